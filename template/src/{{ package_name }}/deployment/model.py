"""The served model: loading it with its input signature, checking requests, predicting.

Where the model comes from, first match wins:
1. ``MODEL_URI`` (environment) or ``serving.model_uri`` (params.yaml), e.g. ``models:/<name>@champion``:
   loaded with ``mlflow.sklearn.load_model``; the signature is the MLflow model's;
2. ``MODEL_DIR`` (environment): a folder written by ``package`` (``model.joblib``, ``signature.json``,
   ``metadata.json``), which is what the serving image holds;
3. the pipeline's outputs ``paths.model`` and ``paths.signature``.

Only a model the quality gate passed is used: the pipeline's model file must be the very one
``paths.gate`` passed (its SHA-256 is in the report), a registry model's run must carry the tag
``quality_gate: passed``. Anything else (failed, never gated, changed since) is refused with the
gate report's path; ``ALLOW_UNGATED_MODEL=1`` uses it anyway, with a warning on every load.

Requests are checked against the signature before anything else: a row with a missing or unknown
column or a value of the wrong type is refused with a message naming the row and the column
(``null`` is a missing value, which the model's imputers fill in). The signature's optional columns
(the raw data's columns the model does not learn from, and the target) may be sent and are ignored,
so a raw row of the training data is a valid request.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import load_params, path, shown
from ..errors import listed, shorten

MODEL_FILE, SIGNATURE_FILE, METADATA_FILE = "model.joblib", "signature.json", "metadata.json"
NUMERIC = {"double", "float", "long", "integer"}
LARGEST = 1e100  # a preprocessed value beyond this overflows the model's products and sums


class RequestError(ValueError):
    """A request the model cannot score; the message says what is wrong."""


@dataclass
class ServedModel:
    model: Any
    signature: list[dict[str, Any]]
    source: str
    columns: list[str] = field(init=False)
    types: dict[str, str] = field(init=False)
    classes: list[Any] | None = field(init=False)

    def __post_init__(self) -> None:
        self.columns = [spec["name"] for spec in self.signature if spec.get("required", True)]
        self.optional = [spec["name"] for spec in self.signature if not spec.get("required", True)]
        self.types = {spec["name"]: spec["type"] for spec in self.signature}
        classes = getattr(self.model, "classes_", None)
        usable = classes is not None and hasattr(self.model, "predict_proba")
        self.classes = [_plain(c) for c in classes] if usable else None
        # A fitted sklearn Pipeline: preprocess once, then ask the final estimator for both
        # predictions and probabilities (exactly what Pipeline.predict/predict_proba compute).
        steps = getattr(self.model, "steps", None)
        self._split = (self.model[:-1], steps[-1][1]) if steps and len(steps) > 1 else None
        # A pipeline whose first step adds the features of prepare.derive reads every raw column it
        # was trained with (a column the request leaves out is missing); no compiled preprocessing.
        self.derived = "derive" in getattr(self.model, "named_steps", {})
        self.inputs = list(self.model.feature_names_in_) if self.derived else self.columns
        self._fast = compile_preprocess(self.model, self.columns)
        # A regressor fitted here carries the target's range in training (train.fit).
        seen = getattr(self.model, "target_range_", None) if self.classes is None else None
        self.target_range = [float(value) for value in seen] if seen is not None else None

    @property
    def task(self) -> str:
        return "classification" if self.classes is not None else "regression"

    def frame(self, rows: list[dict[str, Any]]):
        """A DataFrame of validated rows, column by column, with the dtypes the model was trained on."""
        import numpy as np
        import pandas as pd

        data = {}
        for name in self.inputs:
            values = [row.get(name) for row in rows]
            kind = self.types[name]
            if kind in NUMERIC:
                floating = kind in ("double", "float") or None in values
                data[name] = np.asarray(values, dtype=np.float64 if floating else np.int64)
            elif kind == "boolean":  # the pipeline treats booleans as numbers
                data[name] = np.asarray(values, dtype=np.float64 if None in values else bool)
            else:
                data[name] = np.asarray([np.nan if v is None else v for v in values], dtype=object)
        return pd.DataFrame(data, copy=False)

    def predict(self, frame) -> tuple[list[Any], list[list[float]] | None]:
        """``(predictions, probabilities or None)`` of a DataFrame, as plain Python values."""
        if self._split is not None:
            preprocess, estimator = self._split
            return self._estimate(estimator, preprocess.transform(frame))
        return self._estimate(self.model, frame)

    def out_of_range(self, predictions) -> list[bool] | None:
        """Per prediction: outside the target's range in training (None: no range to compare with)."""
        if self.target_range is None:
            return None
        from ..training.metrics import outside

        return [bool(side) for side in outside(predictions, self.target_range)]

    def predict_rows(self, rows: list[dict[str, Any]]) -> tuple[list[Any], list[list[float]] | None]:
        """Like ``predict(frame(rows))``; the compiled preprocessing skips pandas when it can."""
        if self._fast is None:
            return self.predict(self.frame(rows))
        return self._estimate(self._split[1], self._fast(rows))

    def _estimate(self, estimator, features) -> tuple[list[Any], list[list[float]] | None]:
        """One estimator call: a classifier's class is the most probable one (what its ``predict``
        computes), so ``predict_proba`` alone answers both. Values the model's arithmetic cannot
        take (e.g. 1e308 scaled past the largest float) raise RequestError naming the column."""
        import numpy as np
        import sklearn

        checked = isinstance(features, np.ndarray) and features.dtype.kind == "f"
        if checked:
            self._refuse_non_finite(features)
        # Checked here: scikit-learn's own pass over the values would repeat it (11 µs a request).
        with sklearn.config_context(assume_finite=checked):
            if self.classes is None:
                predictions = estimator.predict(features)
            else:
                probabilities = estimator.predict_proba(features)
        if self.classes is None:
            self._refuse_non_finite(np.asarray(predictions, dtype=np.float64).reshape(-1, 1), output=True)
            return predictions.tolist(), None
        self._refuse_non_finite(probabilities, output=True)
        classes = self.classes
        return [classes[i] for i in probabilities.argmax(axis=1).tolist()], probabilities.tolist()

    def _refuse_non_finite(self, matrix, output: bool = False) -> None:
        import numpy as np

        usable = np.isfinite(matrix) if output else np.isfinite(matrix) & (np.abs(matrix) <= LARGEST)
        if usable.all():
            return
        row, column = (int(i) for i in np.argwhere(~usable)[0])
        name = self._source_columns()[column] if not output and self._source_columns() else None
        where = f"column '{name}'" if name else "one of its values"
        raise RequestError(
            f"instances[{row}]: {where} is too large in magnitude for the model to score "
            "(its arithmetic overflows); send values of the size the model was trained on"
        )

    def _source_columns(self) -> list[str | None]:
        """The request column behind each column of the preprocessed matrix (None where unknown)."""
        cached = getattr(self, "_sources", None)
        if cached is not None:
            return cached
        try:
            names = [str(n).split("__", 1)[-1] for n in self._split[0].get_feature_names_out()]
        except Exception:  # a preprocessing without feature names: say less
            names = []
        ordered = sorted(self.columns, key=len, reverse=True)
        self._sources = [next((c for c in ordered if n == c or n.startswith(c + "_")), None) for n in names]
        return self._sources


def compile_preprocess(model, columns: list[str]):
    """The fitted preprocessing of ``training/estimators.py`` (median imputation + scaling of numeric
    columns, most-frequent imputation + one-hot encoding of the others) as plain numpy over row dicts:
    a function ``rows -> feature matrix``, or None for any other model (served through sklearn).

    sklearn's ColumnTransformer spends about 1.5 ms validating a single row; this computes the same
    numbers from the fitted statistics in a few microseconds. It is checked against sklearn on probe
    rows when the model loads, and not used if they differ."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    steps = getattr(model, "steps", None)
    if not isinstance(model, Pipeline) or len(steps) != 2 or not isinstance(steps[0][1], ColumnTransformer):
        return None
    from ..training.estimators import DateParts

    parts = []
    for _, transformer, selected in steps[0][1].transformers_:
        if transformer == "drop" or len(selected) == 0:
            continue
        if not isinstance(transformer, Pipeline):
            return None
        names = [columns[i] if isinstance(i, int) else i for i in selected]
        if len(transformer.steps) == 3 and isinstance(transformer.steps[0][1], DateParts):
            (_, imputer), (_, scaler) = transformer.steps[1:]
            if not isinstance(imputer, SimpleImputer) or not isinstance(scaler, StandardScaler):
                return None
            if imputer.add_indicator or scaler.mean_ is None or scaler.scale_ is None:
                return None
            fill = np.asarray(imputer.statistics_, dtype=np.float64)
            parts.append(("dates", names, fill, scaler.mean_, scaler.scale_))
            continue
        if len(transformer.steps) != 2:
            return None
        (_, imputer), (_, encoder) = transformer.steps
        if not isinstance(imputer, SimpleImputer) or imputer.add_indicator or not set(names) <= set(columns):
            return None
        fill = list(imputer.statistics_)
        if isinstance(encoder, StandardScaler):
            if not all(isinstance(v, float | int) and v == v for v in fill):
                return None  # a column that was all missing: sklearn drops it
            mean = encoder.mean_ if encoder.mean_ is not None else np.zeros(len(names))
            scale = encoder.scale_ if encoder.scale_ is not None else np.ones(len(names))
            parts.append(("numeric", names, np.asarray(fill, dtype=np.float64), mean, scale))
        elif isinstance(encoder, OneHotEncoder):
            plain = encoder.drop is None and encoder.handle_unknown in ("ignore", "infrequent_if_exist")
            if not plain or getattr(encoder, "_infrequent_enabled", False):
                return None
            lookups = [{value: index for index, value in enumerate(c)} for c in encoder.categories_]
            parts.append(("onehot", names, fill, lookups, [len(c) for c in encoder.categories_]))
        else:
            return None

    def transform(rows: list[dict[str, Any]]):
        blocks = []
        for kind, names, fill, first, second in parts:
            if kind == "dates":
                block = np.array([[p for n in names for p in _date_parts(row[n])] for row in rows])
                block = np.where(np.isnan(block), fill, block)
                blocks.append((block - first) / second)
            elif kind == "numeric":
                block = np.array([[row[n] for n in names] for row in rows], dtype=np.float64)
                missing = np.isnan(block)
                if missing.any():
                    block = np.where(missing, fill, block)
                blocks.append((block - first) / second)
            else:
                block = np.zeros((len(rows), sum(second)))
                for r, row in enumerate(rows):
                    offset = 0
                    for n, default, lookup, width in zip(names, fill, first, second, strict=True):
                        value = row[n]
                        index = lookup.get(default if value is None else value)
                        if index is not None:
                            block[r, offset + index] = 1.0
                        offset += width
                blocks.append(block)
        return blocks[0] if len(blocks) == 1 else np.hstack(blocks)

    if not _same_as_sklearn(transform, steps[0][1], columns, parts):
        return None
    return transform


def _same_as_sklearn(transform, preprocess, columns: list[str], parts) -> bool:
    """Compare the compiled preprocessing with sklearn's on probe rows (fill values, zeros, missing)."""
    import numpy as np
    import pandas as pd

    typical: dict[str, Any] = {}
    dates: list[str] = []
    for kind, names, fill, *_ in parts:
        if kind == "dates":
            dates += names
            typical.update(dict.fromkeys(names, "2020-02-29"))
        else:
            typical.update(
                {n: (float(f) if kind == "numeric" else f) for n, f in zip(names, fill, strict=True)}
            )
    unusual = {n: (0.5 if isinstance(v, float) else "unseen") for n, v in typical.items()}
    rows = [typical, unusual, {**unusual, **dict.fromkeys(dates, "03/15/2031 10:30")}]
    rows.append(dict.fromkeys(typical))
    try:
        frame = pd.DataFrame(
            {n: [np.nan if r[n] is None else r[n] for r in rows] for n in columns if n in typical}
        )
        return bool(np.allclose(transform(rows), preprocess.transform(frame), rtol=1e-12, atol=1e-12))
    except Exception:  # any doubt: serve through sklearn
        return False


def _date_parts(value: Any) -> tuple[float, float, float, float]:
    """Year, month, day of week and day of year of one value, as ``DateParts`` computes them."""
    from datetime import datetime

    if value is None:
        return (math.nan,) * 4
    try:
        stamp = datetime.fromisoformat(value)
    except (TypeError, ValueError):  # not ISO 8601: pandas, exactly as in training
        from ..training.estimators import DateParts

        return tuple(DateParts().transform([[value]])[0])
    return (float(stamp.year), float(stamp.month), float(stamp.weekday()), float(stamp.timetuple().tm_yday))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# ------------------------------------------------------------------------------------- loading
ALLOW_VARIABLE = "ALLOW_UNGATED_MODEL"


def file_digest(file: Path) -> str:
    """The SHA-256 of ``file``, read in blocks (a model file may be large)."""
    import hashlib

    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ungated(params: dict[str, Any], model_file: Path | None = None) -> str | None:
    """Why the pipeline's model file may not be used (None: the gate passed this very file)."""
    model_file = model_file or path(params, "model")
    gate_file, shown_model, shown_gate = path(params, "gate"), shown(model_file), params["paths"]["gate"]
    if not gate_file.is_file():
        return f"{shown_model} was never gated (no {shown_gate})"
    gate = json.loads(gate_file.read_text(encoding="utf-8"))
    if gate.get("passed") is not True:
        return f"{shown_model} failed the quality gate ({shown_gate})"
    digest = gate.get("model_sha256")
    if digest is None or digest != file_digest(model_file):
        return f"{shown_model} is not the model {shown_gate} passed (it changed after evaluate)"
    return None


def refuse_ungated(reason: str | None, params: dict[str, Any]) -> None:
    """Stop with ``reason`` (a model the gate did not pass), unless ``ALLOW_UNGATED_MODEL=1``."""
    if reason is None:
        return
    if os.environ.get(ALLOW_VARIABLE, "").strip() == "1":
        import sys

        print(f"warning: {reason}; used anyway because {ALLOW_VARIABLE}=1", file=sys.stderr)
        return
    from ..errors import GateError

    name = params["tracking"]["model_name"]
    raise GateError(
        f"{reason}: fix it and run make repro, or use a registered model "
        f"(MODEL_URI=models:/{name}@champion); {ALLOW_VARIABLE}=1 uses it anyway"
    )


def model_uri(params: dict[str, Any]) -> str:
    return os.environ.get("MODEL_URI") or (params.get("serving") or {}).get("model_uri") or ""


def read_signature(file: Path) -> list[dict[str, Any]]:
    if not file.is_file():
        raise FileNotFoundError(
            f"no input signature at {file}: run the pipeline (make repro) or make package"
        )
    signature = json.loads(file.read_text(encoding="utf-8"))
    if not isinstance(signature, list) or not all(isinstance(s, dict) and "name" in s for s in signature):
        raise ValueError(f"{file} is not an input signature (a list of name and type objects)")
    return signature


def from_registry(uri: str, params: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    """The sklearn model and its input signature from MLflow (``models:/<name>@<alias>``, ``runs:/...``)."""
    import mlflow

    from ..registry.tracking import connect

    connect(params["tracking"])
    try:
        info = mlflow.models.get_model_info(uri)
        verdict = mlflow.get_run(info.run_id).data.tags.get("quality_gate") if info.run_id else None
    except Exception as error:  # MlflowException, OSError, ...: say which URI failed
        raise ValueError(f"cannot load {uri} from {mlflow.get_tracking_uri()}: {error}") from error
    if verdict != "passed":
        what = "failed the quality gate" if verdict == "failed" else "was never gated"
        refuse_ungated(f"{uri} {what} (its run's tag quality_gate: {verdict or 'none'})", params)
    try:
        model = mlflow.sklearn.load_model(uri)
    except Exception as error:  # MlflowException, OSError, ...: say which URI failed
        raise ValueError(f"cannot load {uri} from {mlflow.get_tracking_uri()}: {error}") from error
    if info.signature is None or info.signature.inputs is None:
        raise ValueError(f"{uri} was logged without an input signature")
    return model, info.signature.inputs.to_dict()


def load(params: dict[str, Any] | None = None) -> ServedModel:
    """The model to serve (see the module docstring for where it comes from)."""
    import joblib

    params = params if params is not None else load_params()
    uri = model_uri(params)
    if uri:
        model, signature = from_registry(uri, params)
        return ServedModel(model, signature, uri)
    folder = os.environ.get("MODEL_DIR")
    if folder:
        folder_path = Path(folder)
        metadata_file = folder_path / METADATA_FILE
        metadata = json.loads(metadata_file.read_text()) if metadata_file.is_file() else {}
        source = f"{shown(folder_path)} ({metadata.get('source', 'packaged')})"
        model_file, signature_file = folder_path / MODEL_FILE, folder_path / SIGNATURE_FILE
    else:
        model_file, signature_file = path(params, "model"), path(params, "signature")
        source = shown(model_file)
    if not model_file.is_file():
        raise FileNotFoundError(f"no model at {model_file}: run the pipeline (make repro) or make package")
    if not folder:  # a packaged folder holds only a model the gate passed (package.py)
        refuse_ungated(ungated(params, model_file), params)
    signature = read_signature(signature_file)
    return ServedModel(joblib.load(model_file), signature, source)


# ----------------------------------------------------------------------------------- validation
_TYPE_NAMES = {"double": "a number", "float": "a number", "long": "an integer", "integer": "an integer"}


def _integral(value: float) -> int:
    if not value.is_integer():
        raise ValueError("not an integer")
    if not -(2**63) <= value < 2**63:  # what the model's int64 columns and the prediction log hold
        raise ValueError("outside the 64-bit integer range")
    return int(value)


def validator(signature: list[dict[str, Any]]):
    """A function ``body bytes -> list of row dicts`` that raises RequestError for a bad request
    (its ``schema`` attribute is the body's JSON schema).

    Built once from the signature: a pydantic TypeAdapter over ``{"instances": [row, ...]}`` where a
    row is a TypedDict with exactly the signature's columns (strict types, ``null`` allowed)."""
    from typing import Annotated, Any, NotRequired

    from pydantic import (
        AfterValidator,
        ConfigDict,
        Field,
        StrictBool,
        StrictStr,
        TypeAdapter,
        ValidationError,
    )
    from typing_extensions import TypedDict

    number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
    # An integer column takes 3 and 3.0 (a CSV column with a gap reads as floats), not 3.5 or "3".
    integer = Annotated[float, Field(strict=True, allow_inf_nan=False), AfterValidator(_integral)]
    python_types = {
        "double": number,
        "float": number,
        "long": integer,
        "integer": integer,
        "boolean": StrictBool,
    }
    fields = {
        spec["name"]: python_types.get(spec["type"], StrictStr) | None
        if spec.get("required", True)
        else NotRequired[Any]  # accepted and ignored: the model does not use it
        for spec in signature
    }
    types = {spec["name"]: spec["type"] for spec in signature if spec.get("required", True)}
    row = TypedDict("Row", fields)  # type: ignore[misc]
    row.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    body = TypedDict("Body", {"instances": Annotated[list[row], Field(min_length=1)]})  # noqa: UP013
    body.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    adapter = TypeAdapter(body)

    def describe(error: dict[str, Any]) -> str:
        loc, kind = error["loc"], error["type"]
        where = f"instances[{loc[1]}]" if len(loc) >= 2 else "instances"
        if kind == "json_invalid":
            return f"the body is not valid JSON ({error['msg']})"
        if not loc:
            return 'the body must be a JSON object {"instances": [{column: value, ...}, ...]}'
        if loc == ("instances",) and kind == "missing":
            return 'the body has no "instances" (a list of rows)'
        if len(loc) == 1 and kind == "extra_forbidden":
            return f'unknown key "{loc[0]}" in the body: only "instances" is allowed'
        if loc == ("instances",):
            if kind == "too_short":
                return "instances is empty: send at least one row"
            return "instances must be a list of rows (JSON objects)"
        if len(loc) == 2:
            return f"{where} must be a JSON object of column: value"
        column = loc[2]
        if kind == "missing":
            return f"{where}: missing column '{column}'"
        if kind == "extra_forbidden":
            known = listed(types, 8)
            return f"{where}: unknown column '{shorten(str(column))}' (the model's {len(types)} columns: {known})"
        expected = _TYPE_NAMES.get(types.get(column, ""), types.get(column, "a value"))
        if types.get(column) == "boolean":
            expected = "true or false"
        elif types.get(column) not in _TYPE_NAMES:
            expected = "a string"
        return f"{where}: column '{column}' must be {expected} or null, got {shorten(json.dumps(error.get('input')))}"

    def validate(raw: bytes) -> list[dict[str, Any]]:
        try:
            return adapter.validate_json(raw)["instances"]
        except ValidationError as error:
            problems = list(dict.fromkeys(describe(e) for e in error.errors(include_url=False)))
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise RequestError("; ".join(problems[:5]) + more) from None

    validate.schema = adapter.json_schema()  # type: ignore[attr-defined]
    return validate

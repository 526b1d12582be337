"""Model Development: fit the pipeline on the training split.

Writes the fitted model to ``paths.model`` and its input signature to ``paths.signature``
(both DVC outputs; the signature is MLflow's JSON for the input columns, which the service
validates requests against). Tracking happens in the evaluation stage, which logs this model,
its parameters and its test metrics to MLflow.
"""

from __future__ import annotations

import json
from typing import Any

from ..config import load_params, on_cluster, path, project_root
from ..data import roles as column_roles
from ..data.prepare import with_features
from ..data.table import read
from .estimators import build_pipeline


def split_xy(frame, target: str, features: list[str] | None = None):
    """The model's input columns (``features``, in that order; default: all but the target) and
    the labels."""
    if features is None:
        return frame.drop(columns=[target]), frame[target]
    return frame[features], frame[target]


def column_type(series) -> str:
    """MLflow's name for the type of a feature column: double, long, boolean or string."""
    from pandas.api import types

    if types.is_bool_dtype(series):
        return "boolean"
    if types.is_integer_dtype(series):
        return "long"
    if types.is_numeric_dtype(series):
        return "double"
    return "string"


def signature_of(frame, features: list[str] | None = None) -> list[dict[str, Any]]:
    """The input signature as MLflow writes it: ``[{"type", "name", "required"}]``. The model's
    ``features`` are required; every other column of ``frame`` (left-out columns, the target) is
    optional: a row of the raw data is accepted, and those columns are ignored. Default: every
    column of ``frame`` is a required feature."""
    features = list(frame.columns) if features is None else features
    return [
        {"type": column_type(frame[c]), "name": str(c), "required": c in features}
        for c in [*features, *(c for c in frame.columns if c not in features)]
    ]


def hyperparameters_of(task: str, settings: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The chosen estimator's hyperparameters and their key in ``params.yaml``: its own block under
    ``train.hyperparameters`` (a key named after the estimator) when it has one, else the keys
    there that name no estimator. So every estimator keeps its settings, and switching
    ``train.estimator`` picks up the right ones."""
    from ..errors import SettingsError
    from .estimators import ESTIMATORS

    given = settings.get("hyperparameters") or {}
    chosen = settings["estimator"]
    if chosen in given:
        block = given[chosen] or {}
        if not isinstance(block, dict):
            raise SettingsError(
                f"params.yaml: train.hyperparameters.{chosen}: expected a mapping of hyperparameters, "
                f"got {block!r}"
            )
        return dict(block), f"train.hyperparameters.{chosen}"
    names = ESTIMATORS.get(task, {})
    return {key: value for key, value in given.items() if key not in names}, "train.hyperparameters"


def fit(
    train,
    target: str,
    task: str,
    settings: dict[str, Any],
    roles: dict[str, str] | None = None,
    raw: list[str] | None = None,
):
    """The fitted pipeline; ``roles`` (default: every column but the target is a feature). ``raw``:
    the raw columns when ``train`` also holds the features of ``prepare.derive``: the pipeline then
    starts with a step that adds them, so it takes a raw row wherever it is used. A regressor
    carries the target's range in training as ``target_range_``."""
    if roles is None:
        roles = {str(c): column_roles.FEATURE for c in train.columns if c != target}
    features, labels = split_xy(train, target, column_roles.features(roles))
    hyperparameters, where = hyperparameters_of(task, settings)
    pipeline = build_pipeline(
        task, settings["estimator"], hyperparameters, features, dates=column_roles.dates(roles), where=where
    )
    if raw is None:
        pipeline.fit(features, labels)
    else:
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer

        from ..data.prepare import features_of

        pipeline = Pipeline([("derive", FunctionTransformer(features_of)), *pipeline.steps])
        pipeline.fit(train[[c for c in raw if c != target]], labels)
    if task != "classification":  # travels with the model: the service flags predictions outside it
        from .metrics import target_range

        pipeline.target_range_ = target_range(labels)
    return pipeline


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "train").parse_args(argv)
    import joblib

    params, root = load_params(), project_root()
    target = params["data"]["target"]
    if on_cluster(params):  # cluster/: LightGBM on Dask; raw is the sample the preprocessing learned
        from ..cluster import stages

        model, raw, features = stages.train(params)
    else:
        raw = read(path(params, "train"), params)
        train = with_features(raw, target)  # the features your code adds (data/prepare.py: derive)
        roles = column_roles.load(params, [c for c in train.columns if c != target])
        derived = len(train.columns) > len(raw.columns)
        model = fit(
            train, target, params["task"], params["train"], roles, list(raw.columns) if derived else None
        )
        features = column_roles.features(roles)
    model_file = path(params, "model")
    model_file.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_file)
    signature_file = path(params, "signature")
    signature_file.parent.mkdir(parents=True, exist_ok=True)
    signature = signature_of(raw, [c for c in features if c in raw.columns])
    signature_file.write_text(json.dumps(signature, indent=2) + "\n", encoding="utf-8")
    used, where = hyperparameters_of(params["task"], params["train"])
    shown = ", ".join(f"{key}={value}" for key, value in used.items()) or "the defaults"
    print(f"trained {params['train']['estimator']} ({where}: {shown}) -> {model_file.relative_to(root)}")
    return 0

"""Deployment: batch-score a CSV or Parquet file with the served model.

``score --input IN.csv --output OUT.csv`` (either may be ``.parquet``) loads the model the service would load (``model.py``:
``MODEL_URI``, ``MODEL_DIR`` or the pipeline's model), drops the target column if the file has it,
accepts the raw data's other columns the model does not use (IDs, dates, free text: they are kept
in the output, not scored), checks the columns against the model's input signature (a missing or unknown column, or text in a
numeric column, stops it with a message naming the column) and writes the input rows with a
``prediction`` column (and ``probability_<class>`` columns for a classifier; ``out_of_range`` for a
regressor: the prediction falls outside the target's range in training).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import load_params
from ..data.table import parquet
from ..errors import GateError
from ..expectations import not_numbers
from . import model as model_module


def check_columns(frame, served: model_module.ServedModel) -> None:
    """Refuse a frame whose columns or column types do not match the signature."""
    from pandas.api import types

    missing = [c for c in served.columns if c not in frame.columns]
    unknown = [c for c in frame.columns if c not in served.types and c not in served.optional]
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(map(repr, missing))}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
    for name, kind in served.types.items():
        if name in frame.columns and kind in model_module.NUMERIC and frame[name].notna().any():
            column = frame[name]
            if not types.is_numeric_dtype(column) or types.is_bool_dtype(column):
                text = not_numbers(column)
                where = f": {text.iloc[0]!r} in row {text.index[0] + 2} of the file" if len(text) else ""
                problems.append(f"column {name!r} must hold numbers ({kind}){where}")
    if problems:
        raise GateError("cannot score: " + "; ".join(problems))


def score(source: Path, target: Path, params: dict[str, Any] | None = None, served=None):
    """Score ``source`` into ``target``; returns the scored frame."""
    from ..data.table import read_table, write

    params = params if params is not None else load_params()
    served = served if served is not None else model_module.load(params)
    frame = read_table(source)
    frame = frame.drop(columns=[params["data"]["target"]], errors="ignore")
    check_columns(frame, served)
    features = frame.reindex(columns=served.inputs)  # a raw column the file lacks is missing
    if len(features):
        predictions, probabilities = served.predict(features)
    else:
        predictions, probabilities = [], None
    scored = frame.copy()
    scored["prediction"] = predictions
    flags = served.out_of_range(predictions)
    if flags is not None:
        scored["out_of_range"] = flags
    if probabilities is not None:
        for index, label in enumerate(served.classes):
            scored[f"probability_{label}"] = [row[index] for row in probabilities]
    write(scored, target)
    return scored


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    options = parser(__doc__, "score")
    options.add_argument(
        "--input",
        required=True,
        type=Path,
        help="CSV or Parquet file (or Parquet dataset folder) with the model's input columns",
    )
    options.add_argument(
        "--output", required=True, type=Path, help="CSV or Parquet file to write (input + prediction)"
    )
    args = options.parse_args(argv)
    if not (args.input.is_file() or (args.input.is_dir() and parquet(args.input))):  # a dataset's folder too
        raise GateError(f"no input file {args.input}")
    params = load_params()
    try:
        served = model_module.load(params)
    except (FileNotFoundError, ValueError) as error:
        raise GateError(f"cannot score: {error}") from error
    scored = score(args.input, args.output, params, served)
    print(f"scored {len(scored)} rows of {args.input} with {served.source} -> {args.output}")
    return 0

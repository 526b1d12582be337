"""Model Development: fit the pipeline on the training split.

Writes the fitted model to ``paths.model`` and its input signature to ``paths.signature``
(both DVC outputs; the signature is MLflow's JSON for the input columns, which the service
validates requests against). Tracking happens in the evaluation stage, which logs this model,
its parameters and its test metrics to MLflow.
"""

from __future__ import annotations

import json
from typing import Any

from ..config import load_params, path, project_root
from .estimators import build_pipeline


def split_xy(frame, target: str):
    return frame.drop(columns=[target]), frame[target]


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


def signature_of(features) -> list[dict[str, Any]]:
    """The input signature of ``features`` as MLflow writes it: ``[{"type", "name", "required"}]``."""
    return [{"type": column_type(features[c]), "name": str(c), "required": True} for c in features.columns]


def fit(train, target: str, task: str, settings: dict[str, Any]):
    features, labels = split_xy(train, target)
    pipeline = build_pipeline(task, settings["estimator"], settings.get("hyperparameters") or {}, features)
    return pipeline.fit(features, labels)


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "train").parse_args(argv)
    import joblib
    import pandas as pd

    params, root = load_params(), project_root()
    train = pd.read_csv(path(params, "train"))
    target = params["data"]["target"]
    model = fit(train, target, params["task"], params["train"])
    model_file = path(params, "model")
    model_file.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_file)
    signature_file = path(params, "signature")
    signature_file.parent.mkdir(parents=True, exist_ok=True)
    signature = signature_of(split_xy(train, target)[0])
    signature_file.write_text(json.dumps(signature, indent=2) + "\n", encoding="utf-8")
    print(f"trained {params['train']['estimator']} -> {model_file.relative_to(root)}")
    return 0

"""Model Development: fit the pipeline on the training split.

Writes the fitted model to ``paths.model`` (a DVC output). Tracking happens in the
evaluation stage, which logs this model, its parameters and its test metrics to MLflow.
"""

from __future__ import annotations

from typing import Any

from ..config import load_params, path, project_root
from .estimators import build_pipeline


def split_xy(frame, target: str):
    return frame.drop(columns=[target]), frame[target]


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
    model = fit(pd.read_csv(path(params, "train")), params["data"]["target"], params["task"], params["train"])
    model_file = path(params, "model")
    model_file.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_file)
    print(f"trained {params['train']['estimator']} -> {model_file.relative_to(root)}")
    return 0

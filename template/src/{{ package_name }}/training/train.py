"""Model Development: fit the pipeline on the training split and track the run in MLflow.

Writes the fitted model to ``paths.model`` (a DVC output) and the MLflow run id to
``paths.run_info`` so evaluation can log into the same run.
"""

from __future__ import annotations

import json
from typing import Any

from ..config import load_params, path, project_root
from .estimators import build_pipeline


def split_xy(frame, target: str):
    return frame.drop(columns=[target]), frame[target]


def fit(train, target: str, task: str, settings: dict[str, Any]):
    features, labels = split_xy(train, target)
    pipeline = build_pipeline(task, settings["estimator"], settings.get("hyperparameters") or {}, features)
    return pipeline.fit(features, labels)


def main() -> int:
    import joblib
    import pandas as pd

    from ..registry import tracking

    params, root = load_params(), project_root()
    target, task = params["data"]["target"], params["task"]
    train = pd.read_csv(path(params, "train"))
    model = fit(train, target, task, params["train"])
    model_file = path(params, "model")
    model_file.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_file)

    features, labels = split_xy(train, target)
    run = tracking.log_training_run(
        model,
        features,
        params=tracking.flatten({"prepare": params["prepare"], "train": params["train"], "task": task}),
        metrics={"train_score": float(model.score(features, labels))},
        tags=tracking.lineage_tags(root, path(params, "train")),
        settings=params["tracking"],
    )
    run_info = path(params, "run_info")
    run_info.write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
    print(f"trained {params['train']['estimator']} -> {model_file.relative_to(root)}; MLflow run {run['run_id']}")
    return 0

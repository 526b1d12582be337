"""MLflow tracking and registry helpers shared by training, evaluation and promotion.

The tracking URI comes from ``MLFLOW_TRACKING_URI`` when set, else from
``params.yaml`` (``tracking.uri``; a relative sqlite path is taken from the project root).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

from ..config import project_root

CHALLENGER, CHAMPION = "challenger", "champion"


def tracking_uri(settings: dict[str, Any]) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI") or settings["uri"]
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not Path(uri[len(prefix) :]).is_absolute():
        uri = prefix + str(project_root() / uri[len(prefix) :])
    return uri


def client(settings: dict[str, Any]):
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(settings))
    return mlflow.MlflowClient()


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _sha256(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest() if file.exists() else "none"


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def lineage_tags(root: Path, data_file: Path) -> dict[str, str]:
    """Tags that tie a run to its code and data: git commit and the DVC lock/data hashes."""
    return {
        "git_commit": _git(root, "rev-parse", "HEAD") or "none",
        "git_dirty": str(bool(_git(root, "status", "--porcelain", "--untracked-files=no"))).lower(),
        "dvc_lock_sha256": _sha256(root / "dvc.lock"),
        "train_data_sha256": _sha256(data_file),
    }


@contextlib.contextmanager
def _quiet(*loggers: str):
    """Hide known, expected warnings (our own model, a uv environment without pip)."""
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def log_run(model, features, params, metrics, tags, settings, signature=None) -> dict[str, str]:
    """Log params, metrics, tags and the model (signature + input example) in one run.
    ``signature``: the input columns as ``signature.json`` lists them (optional columns included);
    default: the columns of ``features``."""
    import json

    import cloudpickle
    import mlflow
    import sklearn
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import Schema

    client(settings)
    mlflow.set_experiment(settings["experiment"])
    example = features.head(5)
    inferred = infer_signature(example, model.predict(example))
    if signature is not None:
        inferred = ModelSignature(inputs=Schema.from_json(json.dumps(signature)), outputs=inferred.outputs)
    with mlflow.start_run() as run, _quiet("mlflow.sklearn", "mlflow.utils.environment"):
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.set_tags(tags)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=inferred,
            input_example=example,
            # The model never leaves your own registry; cloudpickle loads faster than skops
            # and needs no list of trusted types for tree ensembles.
            serialization_format="cloudpickle",
            # Explicit requirements skip MLflow's slow inference of them.
            pip_requirements=[
                f"scikit-learn=={sklearn.__version__}",
                f"cloudpickle=={cloudpickle.__version__}",
            ],
        )
    return {"run_id": run.info.run_id, "model_uri": info.model_uri}


def register_challenger(run: dict[str, str], metrics: dict[str, float], settings) -> str:
    """Register the run's model and point the ``challenger`` alias at the new version."""
    import mlflow

    mlflow_client = client(settings)
    name = settings["model_name"]
    version = mlflow.register_model(run["model_uri"], name).version
    for key, value in metrics.items():
        mlflow_client.set_model_version_tag(name, version, f"metric.{key}", str(value))
    mlflow_client.set_model_version_tag(name, version, "quality_gate", "passed")
    mlflow_client.set_model_version_tag(name, version, "run_id", run["run_id"])
    mlflow_client.set_registered_model_alias(name, CHALLENGER, version)
    return str(version)


def version_by_alias(mlflow_client, name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None

"""MLflow tracking and registry helpers shared by training, evaluation, promotion and serving.

The tracking URI comes from ``MLFLOW_TRACKING_URI`` when set, else from
``params.yaml`` (``tracking.uri``; a relative sqlite path is taken from the project root). It is set
once per process by ``connect``, which also asks a tracking server whether it is up: a server that
is down is named within seconds, instead of minutes of silent retries.
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
from ..errors import GateError

CHALLENGER, CHAMPION = "challenger", "champion"
# A server that stops answering mid-run: a few quick retries, not MLflow's default of minutes.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
# MLflow prices a traced model call from a catalog it downloads from GitHub the first time it
# stores such a span (three tries, seconds each, offline or behind a firewall): the project prices
# its own calls (business/prices.yaml), so no catalog is fetched unless the user names one.
OFFLINE_DEFAULTS = {"MLFLOW_MODEL_CATALOG_URI": ""}
_connected: str | None = None


class TrackingError(GateError):
    """The tracking server cannot be reached; the message names it and what to check."""


def tracking_uri(settings: dict[str, Any]) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI") or settings["uri"]
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not Path(uri[len(prefix) :]).is_absolute():
        uri = prefix + str(project_root() / uri[len(prefix) :])
    return uri


def check_server(uri: str, timeout: float = 5.0) -> None:
    """An http(s) tracking URI must answer ``/health``; raises TrackingError naming it otherwise."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as answer:
            if answer.status == 200:
                return
            reason = f"HTTP {answer.status}"
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):  # up, behind authentication: MLflow's own client will log in
            return
        reason = f"HTTP {error.code}"
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
    raise TrackingError(
        f"the MLflow tracking server at {uri} does not answer ({reason}): start it or fix "
        "MLFLOW_TRACKING_URI / tracking.uri (unset MLFLOW_TRACKING_URI to use the project's own store)"
    )


def offline() -> None:
    """``OFFLINE_DEFAULTS`` for this process, where the user has not set them."""
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)


def connect(settings: dict[str, Any]) -> str:
    """Point MLflow at the project's tracking URI, once per process; returns the URI."""
    global _connected
    import mlflow

    uri = tracking_uri(settings)
    offline()
    if uri != _connected:
        if "MLFLOW_LOGGING_LEVEL" not in os.environ:  # no INFO lines (database set-up...) in the output
            logging.getLogger("mlflow").setLevel(logging.WARNING)
        if uri.startswith(("http://", "https://")):
            for key, value in HTTP_DEFAULTS.items():
                os.environ.setdefault(key, value)
            check_server(uri)
        mlflow.set_tracking_uri(uri)
        _connected = uri
    return uri


def client(settings: dict[str, Any]):
    import mlflow

    connect(settings)
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
    """The file's SHA-256; a folder's (a Parquet dataset's parts): of its files' paths and bytes,
    in order, read in blocks."""
    if not file.exists():
        return "none"
    digest = hashlib.sha256()
    for part in sorted(p for p in ([file] if file.is_file() else file.rglob("*")) if p.is_file()):
        if part != file:
            digest.update(part.relative_to(file).as_posix().encode() + b"\0")
        with part.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def lineage_tags(root: Path, data_file: Path) -> dict[str, str]:
    """Tags that tie a run to its code and data: git commit and the DVC lock/data hashes."""
    commit = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    changed = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {
        # Nothing committed yet (or no repository): say so, rather than a clean state that was never.
        "git_commit": commit or "uncommitted",
        "git_dirty": "true" if not commit or changed else "false",
        "dvc_lock_sha256": _sha256(root / "dvc.lock"),
        "train_data_sha256": _sha256(data_file),
    }


def log_run(params, metrics, tags, settings, log_model=None) -> dict[str, str | None]:
    """Log params, metrics and tags in one run, and the model through ``log_model`` (a function
    called inside the run that logs it with its flavour and returns MLflow's model info; see
    ``training/flavour.py`` for scikit-learn). Returns the run id and the model's URI."""
    import mlflow

    connect(settings)
    mlflow.set_experiment(settings["experiment"])
    with mlflow.start_run() as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.set_tags(tags)
        info = log_model() if log_model is not None else None
    return {"run_id": run.info.run_id, "model_uri": getattr(info, "model_uri", None)}


def register_challenger(run: dict[str, str], metrics: dict[str, float], settings) -> str:
    """Register the run's model and point the ``challenger`` alias at the new version."""
    import mlflow

    mlflow_client = client(settings)
    name = settings["model_name"]
    remove_half_registered(mlflow_client, name)
    # Created with a marker in the same call: a run killed before the end leaves a version the next
    # run recognises and removes (see remove_half_registered), never one that looks complete.
    tags = {"registration": "incomplete", "run_id": run["run_id"]}
    version = mlflow.register_model(run["model_uri"], name, tags=tags).version
    try:
        for key, value in metrics.items():
            mlflow_client.set_model_version_tag(name, version, f"metric.{key}", str(value))
        mlflow_client.set_model_version_tag(name, version, "quality_gate", "passed")
        mlflow_client.set_registered_model_alias(name, CHALLENGER, version)
        mlflow_client.set_model_version_tag(name, version, "registration", "complete")
    except Exception:
        with contextlib.suppress(Exception):  # no half-registered version left behind
            mlflow_client.delete_model_version(name, version)
        raise
    return str(version)


def register_if_passed(gate: dict[str, Any], run: dict[str, str], metrics, settings, shortfall: str) -> str:
    """The evaluation stage's last step in every profile: a failed ``gate`` raises
    QualityGateError (``shortfall`` first, then one line per missed check), a passed one registers
    the run's model as the challenger; returns the version."""
    from .. import gates
    from ..errors import QualityGateError

    if not gate["passed"]:
        lines = "\n".join(f"  - {gates.failure_line(c)}" for c in gate["checks"] if not c["passed"])
        raise QualityGateError(
            f"{shortfall}; MLflow run {run['run_id']} is tagged quality_gate=failed and nothing was "
            f"registered:\n{lines}"
        )
    return register_challenger(run, metrics, settings)


def remove_half_registered(mlflow_client, name: str) -> list[str]:
    """Delete the versions of ``name`` that a run interrupted during registration left marked
    ``registration=incomplete``; returns their numbers."""
    from mlflow.exceptions import MlflowException

    try:
        versions = mlflow_client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return []
    removed = []
    for version in versions:
        if (version.tags or {}).get("registration") == "incomplete":
            mlflow_client.delete_model_version(name, version.version)
            removed.append(str(version.version))
    if removed:
        print(f"removed half-registered version(s) {', '.join(removed)} of {name} (an interrupted run)")
    return removed


def version_by_alias(mlflow_client, name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None

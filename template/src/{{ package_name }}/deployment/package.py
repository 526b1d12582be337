"""Deployment: gather what the serving image needs into ``build/model/``.

Writes ``model.joblib`` (the fitted sklearn model), ``signature.json`` (its input signature) and
``metadata.json`` (where the model came from, the git commit, when it was packaged). The model is
the registry's when ``MODEL_URI`` (or ``serving.model_uri``) names one, e.g.
``models:/<name>@champion``; else the pipeline's outputs ``paths.model`` and ``paths.signature``.
The Dockerfile copies the folder into the image, which serves it (``MODEL_DIR``) without MLflow.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import load_params, path, project_root
from ..errors import GateError
from . import model as model_module

BUILD_DIR = Path("build/model")


def git_commit(root: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip() or None


def package(params: dict[str, Any], out: Path) -> dict[str, Any]:
    """Fill ``out`` with the model, its signature and metadata; returns the metadata."""
    import joblib

    root = project_root()
    uri = model_module.model_uri(params)
    model_file, signature_file = path(params, "model"), path(params, "signature")
    if not uri:
        if not model_file.is_file():
            raise FileNotFoundError(f"no model at {model_file}: run the pipeline first (make repro)")
        model_module.refuse_ungated(model_module.ungated(params, model_file), params)
    out.mkdir(parents=True, exist_ok=True)
    if uri:
        model, signature = model_module.from_registry(uri, params)
        joblib.dump(model, out / model_module.MODEL_FILE)
        source = uri
    else:
        signature = model_module.read_signature(signature_file)
        shutil.copyfile(model_file, out / model_module.MODEL_FILE)
        source = params["paths"]["model"]
    (out / model_module.SIGNATURE_FILE).write_text(json.dumps(signature, indent=2) + "\n", encoding="utf-8")
    metadata = {
        "source": source,
        "git_commit": git_commit(root),
        "task": params.get("task"),
        "columns": sum(1 for column in signature if column.get("required", True)),  # the model's inputs
        "packaged_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out / model_module.METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    options = parser(__doc__, "package")
    options.add_argument("--out", type=Path, default=BUILD_DIR, help=f"folder to fill (default {BUILD_DIR})")
    args = options.parse_args(argv)
    out = args.out if args.out.is_absolute() else project_root() / args.out
    try:
        metadata = package(load_params(), out)
    except (FileNotFoundError, ValueError) as error:
        raise GateError(f"cannot package: {error}") from error
    print(f"packaged {metadata['source']} (commit {metadata['git_commit'] or 'unknown'}) -> {args.out}")
    return 0

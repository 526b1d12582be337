"""Shared helpers: render the template, and one Python environment for every generated project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv") or "uv"
CSV_ANSWERS = {"data_source": "csv", "csv_location": "data/input.csv", "target_column": "label"}


def render(dst: Path, **answers) -> Path:
    """Render the working tree of the template (uncommitted changes included) into ``dst``."""
    import copier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(str(REPO), str(dst), data=answers, defaults=True, vcs_ref="HEAD", quiet=True)
    return dst


def files_of(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts}


@pytest.fixture(scope="session")
def project_env(tmp_path_factory) -> dict[str, str]:
    """Environment for commands run in generated projects.

    All projects sync into one shared virtual environment (each only swaps its own package),
    bytecode caching stays on (it makes every pipeline stage seconds faster), and no command
    phones home.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV")}
    env.update(
        UV_PROJECT_ENVIRONMENT=str(tmp_path_factory.mktemp("shared-env") / "venv"),
        PATH=f"{Path(UV).parent}{os.pathsep}{env['PATH']}",
        DVC_NO_ANALYTICS="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        GX_ANALYTICS_ENABLED="false",
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.com",
    )
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if ok and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return done

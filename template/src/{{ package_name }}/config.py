"""One place that reads the project's settings.

`params.yaml` holds every pipeline parameter and path (DVC reads the same file);
`business/kpis.yaml` holds the objectives and the thresholds the evaluation gate enforces.
Paths in both files are relative to the project root, which is the current directory
unless ``PROJECT_ROOT`` is set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PARAMS_FILE = "params.yaml"
KPIS_FILE = "business/kpis.yaml"


def project_root() -> Path:
    return Path(os.environ.get("PROJECT_ROOT", Path.cwd())).resolve()


def shown(file: Path) -> str:
    """``file`` as the user knows it: relative to the project root when it is inside it."""
    root = project_root()
    file = Path(file).resolve()
    return file.relative_to(root).as_posix() if file.is_relative_to(root) else str(file)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    from .errors import SettingsError

    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle) or {}
    except yaml.YAMLError as error:
        raise SettingsError(f"{path.name} is not valid YAML: {error}") from None


def load_params(root: Path | None = None) -> dict[str, Any]:
    """``params.yaml``, checked whole (``settings.py``): a wrong key or value is a SettingsError."""
    from .settings import validate

    return validate("params", _read_yaml((root or project_root()) / PARAMS_FILE))


def load_kpis(root: Path | None = None) -> dict[str, Any]:
    """``business/kpis.yaml``, checked whole, every bound included."""
    from .settings import validate

    return validate("kpis", _read_yaml((root or project_root()) / KPIS_FILE))


def path(params: dict[str, Any], key: str, root: Path | None = None) -> Path:
    """Absolute path of ``params['paths'][key]``, resolved against the project root."""
    return (root or project_root()) / params["paths"][key]

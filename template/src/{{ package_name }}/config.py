"""One place that reads the project's settings.

`params.yaml` holds every pipeline parameter and path (DVC reads the same file);
`business/kpis.yaml` holds the objectives and the thresholds the evaluation gate enforces.
Paths in both files are relative to the project root, which is the current directory
unless ``PROJECT_ROOT`` is set.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .files import KPIS_FILE as KPIS_FILE  # the settings files' names, for this module's readers
from .files import PARAMS_FILE as PARAMS_FILE


def project_root() -> Path:
    return Path(os.environ.get("PROJECT_ROOT", Path.cwd())).resolve()


def shown(file: Path) -> str:
    """``file`` as the user knows it: relative to the project root when it is inside it."""
    root = project_root()
    file = Path(file).resolve()
    return file.relative_to(root).as_posix() if file.is_relative_to(root) else str(file)


# YAML 1.2 floats (what DVC reads params.yaml as): ``1.0e12`` and ``1e-3`` too, which PyYAML's YAML
# 1.1 rules read as text (they want a dot and a signed exponent: ``1.0e+12``).
FLOAT = r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+)$"


def yaml_loader():
    """PyYAML's safe loader reading numbers as YAML 1.2 does (every settings file goes through it)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(FLOAT), list("-+0123456789."))
    return Loader


def parse_yaml(text: str) -> Any:
    import yaml

    return yaml.load(text, Loader=yaml_loader())  # noqa: S506 (a safe loader)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    from .errors import SettingsError

    try:
        return parse_yaml(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise SettingsError(f"{path.name} is not valid YAML: {error}") from None


def load_params(root: Path | None = None) -> dict[str, Any]:
    """``params.yaml``, checked whole (``settings.py``): a wrong key or value is a SettingsError."""
    from .settings import validate

    return validate("params", _read_yaml((root or project_root()) / PARAMS_FILE))


def load_kpis(root: Path | None = None):
    """``business/kpis.yaml``, checked whole and parsed once: a ``gates.Kpis``. Keys the run's
    model overrides (``params.kpis_overrides``: the ``tiny`` test model's) are merged over it, a
    mapping into a mapping, ``null`` removing a key."""
    from .params import kpis_overrides
    from .settings import validate

    root = root or project_root()
    raw = _read_yaml(root / KPIS_FILE)
    return validate("kpis", merged(raw, kpis_overrides(root)))


def set_value(text: str, block: str, key: str, value: str) -> str:
    """``text`` (a YAML file's) with ``key``'s value inside the top-level ``block:`` replaced by
    ``value``, its comment and every other line kept: how commands write a change for review."""
    from .errors import GateError

    pattern = re.compile(rf"(^{block}:.*?\n(?:[ #].*\n|\n)*?[ ]+{key}:[ ]*)([^#\n]*?)([ ]*(#.*)?)$", re.M)

    def replaced(found: re.Match) -> str:
        rest = found.group(3)
        if found.group(4):  # a comment: it stays in its column
            width = len(found.group(2)) + len(rest) - len(rest.lstrip())
            rest = " " * max(1, width - len(value)) + rest.lstrip()
        return found.group(1) + value + rest

    changed, count = pattern.subn(replaced, text, count=1)
    if not count:
        raise GateError(f"{PARAMS_FILE}: no {block}.{key} to change; set it by hand")
    return changed


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in: mappings key by key, ``None`` removing the key."""
    result = dict(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def path(params: dict[str, Any], key: str, root: Path | None = None) -> Path:
    """Absolute path of ``params['paths'][key]``, resolved against the project root."""
    return (root or project_root()) / params["paths"][key]


def on_cluster(params: dict[str, Any]) -> bool:
    """Whether collect, prepare and train run on a Dask cluster (``engine.name: dask``, cluster/)."""
    return (params.get("engine") or {}).get("name", "local") == "dask"

"""torch for llmops projects on a machine without PyTorch's index: a local index from pip's wheels.

Generated llmops projects take torch from PyTorch's package index (``[tool.uv.index]`` named
``pytorch-cpu`` and ``pytorch-cuda`` in their ``pyproject.toml``). Where a machine carries torch
wheels in pip's ``find-links`` folder (read from the machine, never written in a file), this builds
a one-package simple index over them and returns the ``UV_INDEX`` value that points both names at
it; elsewhere it returns nothing and uv asks PyTorch's index as a user's machine would. Used by the
template's tests and benchmarks alike.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def find_links() -> list[Path]:
    raw = os.environ.get("PIP_FIND_LINKS", "")
    if not raw and shutil.which("pip"):
        done = subprocess.run(["pip", "config", "get", "global.find-links"], capture_output=True, text=True)
        raw = done.stdout if done.returncode == 0 else ""
    return [Path(p.removeprefix("file://")) for p in raw.split() if p and not p.startswith("http")]


def local_index(work: Path) -> dict[str, str]:
    """``{"UV_INDEX": ...}`` for uv when local torch wheels exist, else ``{}``."""
    wheels = sorted(w for folder in find_links() if folder.is_dir() for w in folder.glob("torch-*.whl"))
    if not wheels:
        return {}
    page = work / "torch-index" / "torch"
    page.mkdir(parents=True, exist_ok=True)
    links = "".join(f'<a href="{w.resolve().as_uri()}">{w.name}</a>\n' for w in wheels)
    (page / "index.html").write_text(f"<html><body>\n{links}</body></html>\n", encoding="utf-8")
    url = (work / "torch-index").resolve().as_uri()
    return {"UV_INDEX": f"pytorch-cpu={url} pytorch-cuda={url}"}


if __name__ == "__main__":  # python3 tests/torch_index.py FOLDER: the UV_INDEX value, or nothing
    import sys

    print(local_index(Path(sys.argv[1])).get("UV_INDEX", ""))

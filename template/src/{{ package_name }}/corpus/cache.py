"""Work kept between runs, keyed by content: a stage does again only what changed.

A cache is a JSONL file of ``{"key": ..., ...}`` rows under ``data/cache/`` (named in ``paths`` of
``params.yaml``; a local file, not a DVC output, which DVC would delete before the stage runs).
A run looks each input up by its key, adds what it computed, and writes back the rows it used, so
the rows of removed inputs go too. A missing or damaged file only makes the run slower. A key
holds everything the result depends on: the input's content, the settings, and the code that
computes it (``source_version``), so a changed setting or module never reads a stale row.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


class Cache:
    def __init__(self, file: Path | None):
        self.file = file
        self._old = _read(file)
        self._kept: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._kept.get(key) or self._old.get(key)
        if row is not None:
            self._kept[key] = row
        return row

    def put(self, key: str, value: dict[str, Any]) -> dict[str, Any]:
        row = {**value, "key": key}
        self._kept[key] = row
        return row

    def save(self) -> None:
        from .collect import write_jsonl

        if self.file is not None:
            write_jsonl(self.file, list(self._kept.values()))


def cache_file(params: dict[str, Any], name: str) -> Path | None:
    """``paths.<name>`` of ``params.yaml``; None (no cache) in a project whose settings predate it."""
    from ..config import path

    return path(params, name) if name in params["paths"] else None


def digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def source_version(*modules) -> str:
    """A digest of the modules' source code: what a cached result also depends on."""
    return digest(*(Path(module.__file__).read_text(encoding="utf-8") for module in modules))[:16]


def _read(file: Path | None) -> dict[str, dict[str, Any]]:
    from ..errors import DataValidationError
    from .collect import read_jsonl

    if file is None or not file.is_file():
        return {}
    try:
        return {row["key"]: row for row in read_jsonl(file)}
    except (DataValidationError, KeyError, TypeError):
        return {}

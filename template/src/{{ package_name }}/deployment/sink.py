"""The prediction log: one JSON line per served row, one file per UTC day.

``<dir>/<YYYY-MM-DD>.jsonl``, lines ``{"ts": "<ISO-8601 UTC>", "inputs": {column: value, ...},
"prediction": value}``. The directory is ``PREDICTION_LOG_DIR`` when set, else ``paths.predictions``.
Monitoring (``drift``) reads the ``inputs`` of these lines as production data.

Cheap on purpose: the file stays open in append mode, a request's lines go out in one write, and
the day's file is reopened only when the date changes.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import load_params, path


def log_dir(params: dict[str, Any] | None = None) -> Path:
    configured = os.environ.get("PREDICTION_LOG_DIR")
    if configured:
        return Path(configured)
    return path(params if params is not None else load_params(), "predictions")


class PredictionLog:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._day: str | None = None
        self._handle = None
        self._lock = threading.Lock()

    def file_for(self, day: str) -> Path:
        return self.directory / f"{day}.jsonl"

    def write(self, rows: list[dict[str, Any]], predictions: list[Any]) -> None:
        """Append one line per row (``rows`` and ``predictions`` in the same order)."""
        now = datetime.now(UTC)
        stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        dumps, head = json.dumps, '{"ts": "' + stamp + '", "inputs": '
        text = "".join(
            head + dumps(row) + ', "prediction": ' + dumps(prediction) + "}\n"
            for row, prediction in zip(rows, predictions, strict=True)
        )
        day = stamp[:10]
        with self._lock:
            if day != self._day or self._handle is None:
                self._open(day)
            self._handle.write(text)
            self._handle.flush()

    def _open(self, day: str) -> None:
        if self._handle is not None:
            self._handle.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._handle = self.file_for(day).open("a", encoding="utf-8")
        self._day = day

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle, self._day = None, None

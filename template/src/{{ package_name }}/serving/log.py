"""The request log: one JSON line per served row (or chat request), one file per UTC day.

``<dir>/<YYYY-MM-DD>.jsonl``, lines ``{"ts": "<ISO-8601 UTC>", "inputs": {column: value, ...},
"prediction": value}``, plus ``"traffic": "qa"`` for rows sent by QA and the load test (requests with
the header ``X-Traffic: qa``): monitoring leaves those out, so a deployment's own checks never look
like production drift. The directory is ``PREDICTION_LOG_DIR`` when set, else ``paths.predictions``
(an LLM service: ``paths.requests``, lines written by ``write_records``).
Monitoring (``drift``) reads the ``inputs`` of these lines as production data, through ``read_log``
below: this module is the one that knows the format.

Cheap on purpose: the file stays open in append mode and the day's file is reopened only when the
date changes. A prediction's lines (``write``) are queued and written by a background thread every
``FLUSH_SECONDS`` in one write: the request does not wait on the disk (a write and flush per request
took a tenth of the service's throughput). ``flush()`` writes what is queued now; ``close()`` (at
the service's shutdown) writes the rest; reading the log in the same process (``read_records``)
flushes first. A process killed outright loses at most the last ``FLUSH_SECONDS`` of lines.
A chat request's record (``write_records``) is written at once: its request costs milliseconds.
"""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..config import load_params, path

TRAFFIC_HEADER, QA_TRAFFIC = "X-Traffic", "qa"
FLUSH_SECONDS = 0.05
_OPEN: weakref.WeakSet[PredictionLog] = weakref.WeakSet()  # flushed by read_records in this process


def log_dir(params: dict[str, Any] | None = None) -> Path:
    configured = os.environ.get("PREDICTION_LOG_DIR")
    if configured:
        return Path(configured)
    params = params if params is not None else load_params()
    return path(params, "requests" if "requests" in params["paths"] else "predictions")


class PredictionLog:
    """``retention_days``: day files older than that are deleted whenever a new day's file opens
    (``serving/retention.py``; None or 0 keeps them)."""

    def __init__(self, directory: Path, retention_days: int | None = None):
        self.directory = Path(directory)
        self.retention_days = retention_days or 0
        self._day: str | None = None
        self._handle = None
        self._lock = threading.Lock()
        self._queued: deque[tuple[float, list, list, str | None]] = deque()  # write()s not yet written
        self._writer: threading.Thread | None = None
        self._closing = threading.Event()
        self._second, self._stamp = -1, ""  # the last line's time to the second, as text
        import orjson  # a serving dependency: only the service writes the log

        self._dumps = orjson.dumps
        _OPEN.add(self)

    def file_for(self, day: str) -> Path:
        return self.directory / f"{day}.jsonl"

    def write(self, rows: list[dict[str, Any]], predictions: list[Any], traffic: str | None = None) -> None:
        """Append one line per row (``rows`` and ``predictions`` in the same order); ``traffic``
        marks rows that are not production traffic (``QA_TRAFFIC``). The lines are made and written
        by the log's writer thread, with the time of this call: the caller leaves ``rows`` as they are."""
        if len(rows) != len(predictions):
            raise ValueError(f"{len(rows)} rows but {len(predictions)} predictions")
        self._queued.append((time.time(), rows, predictions, traffic))
        if self._writer is None:
            self._start_writer()

    def _lines(self, when: float, rows, predictions, traffic) -> tuple[str, bytes]:
        """The day and the log lines of one ``write``."""
        second, millis = divmod(int(when * 1000), 1000)
        if second != self._second:  # the date and time to the second, made once a second
            self._second = second
            self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        stamp = f"{self._stamp}.{millis:03d}Z"
        dumps, head = self._dumps, b'{"ts": "' + stamp.encode() + b'", "inputs": '
        tail = b"}\n" if traffic is None else b', "traffic": ' + dumps(traffic) + b"}\n"
        return stamp[:10], b"".join(
            head + dumps(row) + b', "prediction": ' + dumps(prediction) + tail
            for row, prediction in zip(rows, predictions, strict=True)
        )

    def write_records(self, records: list[dict[str, Any]], traffic: str | None = None) -> None:
        """Append one line per record: ``{"ts", **record}`` (a service that logs more than rows and
        predictions, e.g. a chat request with its answer), marked like ``write``'s."""
        now = datetime.now(UTC)
        stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        mark = {} if traffic is None else {"traffic": traffic}
        data = b"".join(self._dumps({"ts": stamp, **record, **mark}) + b"\n" for record in records)
        self._append(stamp[:10], data)

    def flush(self) -> None:
        """Write every queued line now."""
        with self._lock:
            self._write_queued()
            if self._handle is not None:
                self._handle.flush()

    def _start_writer(self) -> None:
        with self._lock:
            if self._writer is None and not self._closing.is_set():
                self._writer = threading.Thread(target=self._write_every, name="request-log", daemon=True)
                self._writer.start()

    def _write_every(self) -> None:
        while not self._closing.wait(FLUSH_SECONDS):
            if self._queued:
                self.flush()

    def _write_queued(self) -> None:
        """The queued lines, one write per day (called with the lock held)."""
        queued, batch, batch_day = self._queued, [], None
        while queued:
            day, data = self._lines(*queued.popleft())
            if day != batch_day and batch:
                self._write_day(batch_day, batch)
                batch = []
            batch_day = day
            batch.append(data)
        if batch:
            self._write_day(batch_day, batch)

    def _write_day(self, day: str, batch: list[bytes]) -> None:
        if day != self._day or self._handle is None:
            self._open(day)
        self._handle.write(b"".join(batch))

    def _append(self, day: str, data: bytes) -> None:
        with self._lock:
            self._write_queued()  # in order: a prediction's lines queued before this record
            if day != self._day or self._handle is None:
                self._open(day)
            self._handle.write(data)
            self._handle.flush()

    def _open(self, day: str) -> None:
        if self._handle is not None:
            self._handle.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._handle = self.file_for(day).open("ab")
        self._day = day
        if self.retention_days:
            from .retention import expire_log

            expire_log(self.directory, self.retention_days)

    def close(self) -> None:
        """Write what is queued, stop the writer and close the file."""
        self._closing.set()
        writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join()
        with self._lock:
            self._write_queued()
            self._writer = None
            self._closing.clear()  # a later write starts a new writer (tests reuse a log)
            if self._handle is not None:
                self._handle.close()
                self._handle, self._day = None, None


def read_records(directory: Path, days: int | None = None, now: datetime | None = None):
    """Every log line under ``directory`` (``*.jsonl``) as a dict, optionally only those of the last
    ``days`` days, never the lines of QA traffic. Returns ``(records, skipped_lines, qa_lines)``."""
    since = (now or datetime.now(UTC)) - timedelta(days=days) if days is not None else None
    folder = Path(directory).resolve()
    for log in list(_OPEN):  # lines this process has queued for the folder
        if log.directory.resolve() == folder:
            log.flush()
    records, skipped, qa = [], 0, 0
    for file in sorted(Path(directory).rglob("*.jsonl")):
        for line in file.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if since is not None and _timestamp(record["ts"]) < since:
                    continue
            except (ValueError, KeyError, TypeError, AttributeError):
                skipped += 1
                continue
            if not isinstance(record, dict):
                skipped += 1
            elif record.get("traffic") == QA_TRAFFIC:
                qa += 1
            else:
                records.append(record)
    return records, skipped, qa


def read_log(directory: Path, days: int | None = None, now: datetime | None = None):
    """The ``inputs`` of every prediction-log line under ``directory`` (``*.jsonl``), one row per line,
    optionally only the lines of the last ``days`` days, never the lines of QA traffic (their count is
    in ``frame.attrs["qa_rows"]``). Returns ``(frame, skipped_lines)``."""
    import pandas as pd

    records, skipped, qa = read_records(directory, days, now)
    rows = [r["inputs"] for r in records if isinstance(r.get("inputs"), dict)]
    frame = pd.DataFrame(rows)
    frame.attrs["qa_rows"] = qa
    return frame, skipped + len(records) - len(rows)


def _timestamp(text: str) -> datetime:
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)

"""The audit trail: append-only, hash-chained JSON lines, one per answer, that show any edit.

``<paths.audit>/<YYYY-MM-DD>.jsonl``, each line ``{"seq", "ts", "record", "prev", "hash"}``: ``seq``
counts from 1 over the whole trail, ``prev`` is the line before's ``hash`` (64 zeros for the
first), and ``hash`` is the SHA-256 of ``prev`` and the line's other fields as canonical JSON
(sorted keys, no spaces). Changing, removing, reordering or inserting a line breaks the chain at
that line: ``verify`` names the first line that does not hold, and why.

Writers on one machine share the folder (the service's replicas): each append holds an exclusive
lock on ``<folder>/.lock`` while it reads the last line's hash and writes its own. Replicas on
several machines each need their own folder (``AUDIT_DIR``), or a store of their own that keeps
files unchangeable (object storage with retention locks), where this trail can be copied.

Retention: day files older than ``audit.retention_days`` are removed when a new day's file opens;
the last line they held is kept in ``anchor.json`` (its ``seq`` and ``hash``), so what is left still
verifies from there. ``export`` writes the records of a date range or of given request ids, with
their place in the chain, for an auditor.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
ANCHOR = "anchor.json"


def line_hash(prev: str, seq: int, ts: str, record: dict[str, Any]) -> str:
    """The hash a line must carry: SHA-256 over ``prev`` and the canonical JSON of the rest."""
    body = json.dumps(
        {"prev": prev, "record": record, "seq": seq, "ts": ts},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def day_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).glob("*.jsonl") if _day_of(p) is not None)


def _day_of(file: Path) -> date | None:
    try:
        return date.fromisoformat(file.stem)
    except ValueError:
        return None


def _last_line(file: Path) -> bytes | None:
    """The file's last non-empty line, read from its end."""
    with file.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        block, data = 4096, b""
        while size > 0:
            step = min(block, size)
            size -= step
            handle.seek(size)
            data = handle.read(step) + data
            lines = data.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or size == 0:
                last = lines[-1].strip()
                return last or None
    return None


def head(folder: Path) -> tuple[int, str]:
    """``(seq, hash)`` of the trail's last line (``(0, GENESIS)`` when empty; the anchor when only it
    is left)."""
    for file in reversed(day_files(folder)):
        last = _last_line(file)
        if last:
            line = json.loads(last)
            return int(line["seq"]), str(line["hash"])
    anchor = Path(folder) / ANCHOR
    if anchor.is_file():
        kept = json.loads(anchor.read_text(encoding="utf-8"))
        return int(kept["seq"]), str(kept["hash"])
    return 0, GENESIS


class Trail:
    """Appends records to the trail in ``folder`` (``retention_days`` 0: kept for ever)."""

    def __init__(self, folder: Path, retention_days: int = 0):
        self.folder = Path(folder)
        self.retention_days = int(retention_days or 0)
        self._lock = threading.Lock()
        self._lock_file = None
        self._opened_day: str | None = None
        # (file, its size after this writer's last line, that line's seq and hash): while the file
        # still has that size, no other writer has appended and the head need not be read again
        self._known: tuple[str, int, int, str] | None = None

    def append(self, record: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
        """Write one line for ``record``; returns it (``seq``, ``ts``, ``record``, ``prev``, ``hash``)."""
        import fcntl

        now = now or datetime.now(UTC)
        ts = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        day = ts[:10]
        file = self.folder / f"{day}.jsonl"
        with self._lock:
            if self._lock_file is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._lock_file = (self.folder / ".lock").open("a")
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)  # replicas on this machine: one at a time
            try:
                if day != self._opened_day:
                    self._opened_day = day
                    if self.retention_days:
                        expire(self.folder, self.retention_days, now.date())
                known = self._known
                try:
                    unchanged = (
                        known is not None and known[0] == file.name and file.stat().st_size == known[1]
                    )
                except FileNotFoundError:
                    unchanged = False
                seq, prev = (known[2], known[3]) if unchanged else head(self.folder)
                seq += 1
                line = {"seq": seq, "ts": ts, "record": record, "prev": prev}
                line["hash"] = line_hash(prev, seq, ts, record)
                text = json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
                with file.open("ab") as out:
                    out.write(text.encode("utf-8"))
                    size = out.tell()
                self._known = (file.name, size, seq, line["hash"])
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        return line

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def expire(folder: Path, days: int, today: date | None = None) -> list[Path]:
    """Remove day files older than ``days`` days, keeping the last removed line in ``anchor.json``."""
    today = today or datetime.now(UTC).date()
    cutoff = today - timedelta(days=days)
    old = [f for f in day_files(folder) if _day_of(f) < cutoff]
    kept = None
    for file in old:
        last = _last_line(file)
        if last:
            kept = json.loads(last)
    if kept is not None:
        anchor = {
            "seq": kept["seq"],
            "hash": kept["hash"],
            "ts": kept["ts"],
            "removed_before": cutoff.isoformat(),
        }
        (Path(folder) / ANCHOR).write_text(json.dumps(anchor, indent=2) + "\n", encoding="utf-8")
    for file in old:
        file.unlink()
    return old


@dataclass
class Verdict:
    lines: int
    problem: str | None  # None: the chain holds

    @property
    def holds(self) -> bool:
        return self.problem is None


def verify(folder: Path) -> Verdict:
    """Walk the trail from the anchor (or the start) and check every line's ``seq``, ``prev`` and
    ``hash``; the first line that does not hold is named with its file and line number."""
    folder = Path(folder)
    seq, prev = 0, GENESIS
    anchor = folder / ANCHOR
    if anchor.is_file():
        kept = json.loads(anchor.read_text(encoding="utf-8"))
        seq, prev = int(kept["seq"]), str(kept["hash"])
    count = 0
    for file in day_files(folder):
        shown = f"{folder.name}/{file.name}"
        for number, text in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if not text.strip():
                continue
            where = f"{shown} line {number}"
            try:
                line = json.loads(text)
                fields = (int(line["seq"]), str(line["ts"]), line["record"], str(line["prev"]), line["hash"])
            except (ValueError, KeyError, TypeError):
                return Verdict(count, f"{where}: not a line of the trail")
            got_seq, ts, record, got_prev, got_hash = fields
            if got_seq != seq + 1:
                what = "removed" if got_seq > seq + 1 else "repeated or moved"
                return Verdict(count, f"{where}: seq {got_seq} where {seq + 1} comes next (a line {what})")
            if got_prev != prev:
                return Verdict(count, f"{where}: it does not follow the line before (prev differs)")
            if line_hash(got_prev, got_seq, ts, record) != got_hash:
                return Verdict(count, f"{where}: its hash does not match what it holds (edited)")
            seq, prev = got_seq, got_hash
            count += 1
    return Verdict(count, None)


def select(
    folder: Path, since: date | None = None, until: date | None = None, request_ids: set[str] | None = None
) -> list[dict[str, Any]]:
    """The trail's lines of the days ``since``..``until`` (inclusive), or of ``request_ids``."""
    out = []
    for file in day_files(folder):
        day = _day_of(file)
        if (since and day < since) or (until and day > until):
            continue
        for text in file.read_text(encoding="utf-8").splitlines():
            if not text.strip():
                continue
            line = json.loads(text)
            if request_ids and line.get("record", {}).get("request_id") not in request_ids:
                continue
            out.append(line)
    return out

"""Retention: what the service keeps of its requests, and for how long (``serving.retention_days``
in ``params.yaml``; 0 keeps everything).

The request log's day files (``<dir>/<YYYY-MM-DD>.jsonl``) older than that are deleted when the
service starts and each time it opens a new day's file; the MLflow traces of the tracking store
older than that are deleted when the service starts. Monitoring (``make drift``, ``--days N``)
reads what is left: keep at least the days it needs.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")


def cutoff(days: int, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(days=days)


def expire_log(directory: Path, days: int, now: datetime | None = None) -> list[Path]:
    """Delete the day files of the request log older than ``days`` days; the deleted files."""
    if days <= 0 or not Path(directory).is_dir():
        return []
    oldest = cutoff(days, now).date()
    gone = []
    for file in Path(directory).glob("*.jsonl"):
        match = DAY_FILE.match(file.name)
        if match and date.fromisoformat(match.group(1)) < oldest:
            file.unlink(missing_ok=True)
            gone.append(file)
    return sorted(gone)


def expire_traces(days: int, now: datetime | None = None) -> int:
    """Delete the traces of the tracking store older than ``days`` days, in every experiment that
    has any; how many were deleted."""
    if days <= 0:
        return 0
    import mlflow

    client = mlflow.MlflowClient()
    before = int(cutoff(days, now).timestamp() * 1000)
    deleted = 0
    for experiment in client.search_experiments():
        deleted += client.delete_traces(experiment.experiment_id, max_timestamp_millis=before) or 0
    return deleted

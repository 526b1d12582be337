"""The one writer of reports: JSON files, markdown on the console and in the GitHub job summary,
and step outputs. Every gate and check publishes through here, so a report looks the same and lands
in the same places whichever command wrote it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json(target: Path, payload: Any) -> None:
    """``payload`` as indented JSON at ``target`` (folders created)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def summary(markdown: str) -> None:
    """Append ``markdown`` to the GitHub Actions job summary, when there is one."""
    file = os.environ.get("GITHUB_STEP_SUMMARY")
    if file:
        with open(file, "a", encoding="utf-8") as handle:
            handle.write(markdown if markdown.endswith("\n") else markdown + "\n")


def outputs(**values: Any) -> None:
    """``key=value`` lines for later workflow steps (``$GITHUB_OUTPUT``), when in GitHub Actions."""
    file = os.environ.get("GITHUB_OUTPUT")
    if file:
        with open(file, "a", encoding="utf-8") as handle:
            for key, value in values.items():
                text = str(value).lower() if isinstance(value, bool) else str(value)
                handle.write(f"{key}={text}\n")


def publish(target: Path | None, payload: Any, markdown: str | None = None, echo: bool = True) -> None:
    """Write ``payload`` to ``target``; print ``markdown`` and add it to the job summary."""
    if target is not None:
        write_json(target, payload)
    if markdown:
        if echo:
            print(markdown)
        summary(markdown)

"""Settings the first run writes: a value left as a marked placeholder is filled once, from what the
run found, and is then the user's to review and commit.

A placeholder is a key followed by a marker comment, either with an empty value
(``primary_metric: null   # from the data on the first run``) or as a comment line of its own
(``# ttft_p95_ms: measured on the first run``, for a bound that must not be empty meanwhile).
A key already given a value is never touched; put the marker back to have it written again
(``unfilled`` does it for every value a marker wrote).
"""

from __future__ import annotations

import re
from pathlib import Path

FROM_THE_DATA = "# from the data on the first run"
MEASURED = "measured on the first run"


def pattern(marker: str) -> re.Pattern:
    return re.compile(
        r"^(?P<indent>[ ]*)(?:#[ ]*)?(?P<key>[a-z_][a-z0-9_]*):[ ]*(null|\{\}|~)?[ ]*"
        + re.escape(marker)
        + r".*$",
        re.MULTILINE,
    )


def keys(text: str, marker: str) -> list[str]:
    """The placeholder keys of ``text``, in order."""
    return [match["key"] for match in pattern(marker).finditer(text)]


def fill(text: str, marker: str, defaults: dict[str, list[str]]) -> tuple[str, list[str]]:
    """``text`` with every placeholder of ``marker`` that ``defaults`` has lines for replaced by
    them (indented as the placeholder was); the keys that were filled."""
    filled = []

    def replace(match: re.Match) -> str:
        key, indent = match["key"], match["indent"]
        if key not in defaults:
            return match[0]
        filled.append(key)
        return "\n".join(indent + line for line in defaults[key])

    return pattern(marker).sub(replace, text), filled


def unfilled(text: str, marker: str) -> str:
    """``text`` with every value that ``marker`` wrote (its comment starts with ``# <marker>:``)
    turned back into a placeholder line, to be written again by the next run."""
    written = re.compile(
        r"^(?P<indent>[ ]*)(?P<key>[a-z_][a-z0-9_]*):[^#\n]*#[ ]*" + re.escape(marker) + r":.*$", re.MULTILINE
    )
    return written.sub(lambda match: f"{match['indent']}# {match['key']}: {marker}", text)


def fill_file(file: Path, marker: str, defaults: dict[str, list[str]]) -> list[str]:
    """``fill`` on ``file``, written back when something was filled; the keys filled."""
    if not file.is_file():
        return []
    text, filled = fill(file.read_text(encoding="utf-8"), marker, defaults)
    if filled:
        file.write_text(text, encoding="utf-8")
    return filled

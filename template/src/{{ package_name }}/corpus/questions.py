"""The project's own questions, with the document that answers each: the held-out pairs, or, for a
project that has documents but no instruction/answer pairs yet, questions drafted from the
documents' titles and headings (a heading names what its section answers).

Evaluation's retrieval metrics, ``make qa``'s golden questions and load test, and query-drift
monitoring all read them here, so a project with documents only still has all three.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from ..config import path

HEADING = re.compile(r"^#{1,3}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
PER_DOCUMENT = 3
AT_MOST = 300
DRAFT = "`make draft-pairs` drafts candidates from your documents for you to review"
HOW_TO_ADD = f"add instruction/answer pairs to data.pairs (JSONL: instruction, answer, source); {DRAFT}"


def from_headings(documents: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Up to ``PER_DOCUMENT`` questions per document (its title, then its headings), leaving out a
    heading more than one document has ("Examples"): ``{"instruction", "source"}`` each, at most
    ``AT_MOST`` spread evenly over the documents."""
    found = {}
    for document in documents:
        titles = [document.get("title") or ""] + HEADING.findall(document.get("text", ""))
        cleaned = [re.sub(r"[`*_\[\]]", "", t).strip() for t in titles]
        found[document["id"]] = list(dict.fromkeys(t for t in cleaned if len(t.split()) >= 2))
    shared = Counter(t.lower() for titles in found.values() for t in titles)
    questions = [
        {"instruction": title, "source": source}
        for source, titles in found.items()
        for title in [t for t in titles if shared[t.lower()] == 1][:PER_DOCUMENT]
    ]
    step = max(1, len(questions) // AT_MOST)
    return questions[::step][:AT_MOST]


def project_questions(params: dict[str, Any], root: Path | None = None) -> tuple[list[dict[str, Any]], str]:
    """The held-out pairs when there are some, else questions drafted from the documents; and
    which of the two (``pairs`` or ``headings``)."""
    from .collect import read_jsonl

    held_out = path(params, "eval_pairs", root)
    pairs = read_jsonl(held_out) if held_out.is_file() else []
    if pairs:
        return pairs, "pairs"
    return from_headings(read_jsonl(path(params, "documents", root))), "headings"

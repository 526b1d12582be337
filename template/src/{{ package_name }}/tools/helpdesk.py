"""The help centre's tools: what an agent of this project may call (``registry.py``).

- ``search_documents``: the project's own documents, through its index when it has retrieval
  (else the words of the collected documents);
- ``plan_details``: a read-only lookup in a small table (``paths.plans``: the bundled
  ``data/sample/plans.csv``);
- ``open_ticket``: writes a support ticket (``paths.tickets``): a side effect, so every call waits
  for a person's approval.

Replace them with your own: a typed function, a docstring with ``Args:``, and ``@tool``.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any

from pydantic import Field

from .registry import tool

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _project():
    """The project's settings, read once per process and again when params.yaml changes (a
    tool call then costs the tool's own work, not the settings' checks)."""
    from ..config import PARAMS_FILE, project_root

    root = project_root()
    return _settings(root, (root / PARAMS_FILE).stat().st_mtime_ns), root


@functools.lru_cache(maxsize=4)
def _settings(root, changed: int) -> dict[str, Any]:
    from ..config import load_params

    return load_params(root)


@functools.lru_cache(maxsize=2)
def _retriever(root, changed: int):
    """The project's index, opened once (and again when the index is rebuilt)."""
    from ..llm.index import open_index

    return open_index(_project()[0], root)


@tool(timeout_s=10.0)
def search_documents(
    query: Annotated[str, Field(min_length=1, max_length=500)], k: int = 3
) -> list[dict[str, Any]]:
    """Find the passages of the help centre's documents that best answer a question.

    Args:
        query: the question or keywords to look up
        k: how many passages to return (1 to 10)
    """
    from ..config import path

    k = max(1, min(int(k), 10))
    params, root = _project()
    if params.get("retrieval"):
        index = path(params, "index", root)
        built = max((f.stat().st_mtime_ns for f in index.iterdir()), default=0)  # rebuilt: opened again
        found = _retriever(root, built).search([query], k)[0]
        return [{"document": c["document"], "title": c.get("title", ""), "text": c["text"]} for c in found]
    from ..corpus.collect import read_jsonl

    words = set(re.findall(r"\w+", query.lower()))
    documents = read_jsonl(path(params, "documents", root))
    scored = sorted(
        documents,
        key=lambda d: -len(words & set(re.findall(r"\w+", d.get("text", "").lower()))),
    )
    return [{"document": d["id"], "title": d.get("title", ""), "text": d["text"][:1000]} for d in scored[:k]]


@tool
def plan_details(plan: Annotated[str, Field(min_length=1, max_length=100)]) -> dict[str, Any]:
    """Look up the price and the included minutes of one membership plan.

    Args:
        plan: the plan's name, e.g. Day Pass, Monthly or Annual
    """
    import csv

    from ..config import path

    params, root = _project()
    with path(params, "plans", root).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    wanted = plan.strip().lower()
    for row in rows:
        if row["plan"].strip().lower() == wanted:
            return row
    raise LookupError(f"no plan named {plan!r}; the plans are: {', '.join(r['plan'] for r in rows)}")


@tool(side_effects=True, timeout_s=5.0)
def open_ticket(
    subject: Annotated[str, Field(min_length=3, max_length=120)],
    details: Annotated[str, Field(min_length=1, max_length=2000)],
    email: Annotated[str, Field(pattern=EMAIL, max_length=200)],
) -> dict[str, Any]:
    """Open a support ticket for a person, to be answered by the support team by email.

    Args:
        subject: a short title of the problem
        details: what happened, in the rider's words
        email: where the support team answers
    """
    import json
    import uuid
    from datetime import UTC, datetime

    from ..config import path

    params, root = _project()
    file = path(params, "tickets", root)
    file.parent.mkdir(parents=True, exist_ok=True)
    ticket = {
        "id": f"T-{uuid.uuid4().hex[:8]}",
        "opened": datetime.now(UTC).isoformat(timespec="seconds"),
        "subject": subject,
        "details": details,
        "email": email,
    }
    with file.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(ticket) + "\n")
    return {"id": ticket["id"], "status": "open"}

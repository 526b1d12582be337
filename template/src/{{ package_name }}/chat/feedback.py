"""Feedback on answers, keyed by the request id every answer carries (``x-request-id``, and the
tail of the completion's ``id``): ``POST /v1/feedback``

    {"request_id": "...", "verdict": "helped" | "not_helpful" | "wrongly_blocked" | "harmful",
     "comment": "optional text"}

is appended to the feedback log, a sibling of the request log (``logs/feedback/<YYYY-MM-DD>.jsonl``
beside ``logs/requests``), the comment with personal data redacted as the input rails redact a
question. ``make drift`` reports the verdicts (``wrongly_blocked_share`` among them) and
``make guardrails-review`` turns wrongly blocked and harmful answers into cases to label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .protocol import Invalid, json_object

VERDICTS = ("helped", "not_helpful", "wrongly_blocked", "harmful")
MAX_COMMENT = 2000


def folder(requests: Path) -> Path:
    """The feedback log of the request log in ``requests``."""
    return Path(requests).parent / "feedback"


def read(requests: Path, days: int | None = None) -> list[dict[str, Any]]:
    """The feedback on the requests logged in ``requests`` (of the last ``days``; none yet: [])."""
    from ..serving.log import read_records

    opinions = folder(requests)
    return read_records(opinions, days)[0] if opinions.is_dir() else []


def parse(body: bytes) -> dict[str, Any]:
    data = json_object(body)
    unknown = sorted(set(data) - {"request_id", "verdict", "comment"})
    if unknown:
        raise Invalid(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
    ident = data.get("request_id")
    if not isinstance(ident, str) or not ident.strip() or len(ident) > 100:
        raise Invalid("request_id: expected the id of an answer (its x-request-id header)", "request_id")
    verdict = data.get("verdict")
    if verdict not in VERDICTS:
        raise Invalid(f"verdict: expected one of {', '.join(VERDICTS)}", "verdict")
    comment = data.get("comment", "")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise Invalid(f"comment: expected text of at most {MAX_COMMENT} characters", "comment")
    return {"request_id": ident.strip().removeprefix("chatcmpl-"), "verdict": verdict, "comment": comment}


def handler(log, rails):
    """``handle(body, traffic)`` for the route: the feedback, checked and redacted, into ``log``."""

    def handle(body: bytes, traffic: str | None) -> dict[str, Any]:
        record = parse(body)
        if record["comment"] and rails is not None:
            record["comment"] = rails.scrub(record["comment"])
        log.write_records([record], traffic)
        return {"object": "feedback", "request_id": record["request_id"], "verdict": record["verdict"]}

    return handle

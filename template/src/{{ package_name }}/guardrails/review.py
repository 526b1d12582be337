"""Guardrails that learn from production: cases from the request log and the feedback to label.

``make guardrails-review`` collects the requests a person should look at: those the feedback says
were wrongly blocked or answered harmfully, and those an input rail blocked or flagged. Each is
added once (by request id) to ``guardrails/review.jsonl`` as the log holds it (personal data
already redacted, a flood not at all) with the rules that fired, the feedback, and a suggested
``label``: ``benign`` for a wrongly blocked question, ``attack`` otherwise. A person sets ``label``
(``attack``, ``benign`` or ``skip``) and, for an attack, its ``family``; then

    python -m <package> guardrails-review --apply

moves the labelled cases into ``guardrails/attacks.jsonl`` and ``guardrails/benign.jsonl`` and
keeps the rest for later. Commit the sets: the pull request runs the guardrails gate on them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import load_params, project_root
from ..monitoring.queries import INPUT_RULES
from .check import ATTACKS, BENIGN, read_set

REVIEW = "guardrails/review.jsonl"
LABELS = ("attack", "benign", "skip")


def _lines(file: Path) -> list[dict[str, Any]]:
    if not file.is_file():
        return []
    return [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write(file: Path, rows: list[dict[str, Any]]) -> None:
    file.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def candidates(records: list[dict[str, Any]], feedback: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The requests to review, oldest first: given feedback that is not ``helped``, or touched by
    an input rail. A request whose question the log does not hold (a flood) is left out."""
    said = {item["request_id"]: item for item in feedback if item.get("verdict") not in (None, "helped")}
    out = []
    for record in records:
        ident, question = record.get("request_id"), record.get("question")
        rules = [r for r in record.get("rules") or [] if r in INPUT_RULES]
        opinion = said.get(ident)
        if not ident or not question or not (opinion or rules or record.get("blocked")):
            continue
        verdict = opinion.get("verdict") if opinion else None
        out.append(
            {
                "request_id": ident,
                "text": question,
                "blocked": record.get("blocked"),
                "rules": rules,
                "feedback": verdict,
                "comment": opinion.get("comment", "") if opinion else "",
                "label": "benign" if verdict == "wrongly_blocked" else "attack",
                "family": "",
                "reviewed": False,
            }
        )
    return out


def collect(root: Path, params: dict[str, Any]) -> tuple[int, int]:
    """Add the new candidates of the request log to the review file: (added, waiting)."""
    from ..chat import feedback as opinions
    from ..serving.log import log_dir, read_records

    requests = log_dir(params)
    requests = requests if requests.is_absolute() else root / requests
    records = read_records(requests)[0] if requests.is_dir() else []
    feedback = opinions.read(requests)
    file = root / REVIEW
    waiting = _lines(file)
    known = {row["request_id"] for row in waiting}
    done = {row.get("request_id") for row in read_set(root / ATTACKS) + read_set(root / BENIGN)}
    new = [c for c in candidates(records, feedback) if c["request_id"] not in known | done]
    _write(file, waiting + new)
    return len(new), len(waiting) + len(new)


def apply(root: Path) -> tuple[int, int, int]:
    """Move the reviewed cases (``reviewed: true``) into the sets: (attacks, benign, skipped)."""
    from ..errors import SettingsError

    file = root / REVIEW
    rows = _lines(file)
    attacks, benign, keep, skipped = [], [], [], 0
    for number, row in enumerate(rows, start=1):
        if not row.get("reviewed"):
            keep.append(row)
            continue
        label = row.get("label")
        if label not in LABELS:
            raise SettingsError(
                f"{REVIEW} line {number}: label must be one of {', '.join(LABELS)}, got {label!r}"
            )
        if label == "attack" and not row.get("family"):
            raise SettingsError(
                f"{REVIEW} line {number}: an attack needs its family (e.g. override, persona)"
            )
        case = {
            "text": row["text"],
            "family": row.get("family") or "ordinary",
            "request_id": row["request_id"],
        }
        if label == "attack":
            attacks.append({**case, "rule": row.get("rule", "injection")})
        elif label == "benign":
            benign.append(case)
        else:
            skipped += 1
    for name, added in ((ATTACKS, attacks), (BENIGN, benign)):
        if added:
            target = root / name
            with target.open("a", encoding="utf-8") as handle:
                handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in added))
    _write(file, keep)
    return len(attacks), len(benign), skipped


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    options = parser(__doc__, "guardrails-review")
    options.add_argument("--apply", action="store_true", help="move the reviewed cases into the sets")
    args = options.parse_args(argv)
    root = project_root()
    if args.apply:
        attacks, benign, skipped = apply(root)
        print(
            f"added {attacks} attacks to {ATTACKS} and {benign} questions to {BENIGN} ({skipped} skipped); "
            "run make repro (the guardrails gate) and open a pull request"
        )
        return 0
    added, waiting = collect(root, load_params())
    print(
        f"{added} new cases from the request log and feedback, {waiting} waiting in {REVIEW}: "
        "set each one's label (attack, benign, skip), an attack's family, and reviewed: true; then "
        "python -m {package} guardrails-review --apply".replace("{package}", __package__.split(".")[0])
    )
    return 0

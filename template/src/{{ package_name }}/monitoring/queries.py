"""Monitoring of the chat service: what its request log says about production (``make drift``).

Reads the request log (``PREDICTION_LOG_DIR`` if set, else ``paths.requests``; ``--days N`` for a
window), QA and load-test traffic left out, and measures:

- ``query_drift_share``: the share of questions unlike those the application was built for. Each
  question's closeness to the documents is its best retrieval score with a sentence-transformers
  embedder, else the share of its words the documents hold (the hashing embedder's features
  collide: on 5,700 chunks of 56 pages an off-topic question scored as close as the project's own,
  the words told them apart); the cut-off is the 5th percentile of the same closeness for the
  project's own instruction/answer questions, so about 5 % of questions like the reference fall
  below it and a larger share means the questions moved;
- ``guardrail_trigger_rate``: the share of requests an input rail touched or blocked;
- ``cost_per_day``: the largest day's cost (``business/prices.yaml``); beside it, not gated, the
  mean ``cost_per_request`` and the ``savings`` by cause: what the semantic cache
  (``chat/cache.py``) and routing (``chat/routing.py``) kept from being generated, and their
  share of what the requests would have cost without them;
- ``grounded_share``: the mean grounding of the logged answers (the faithfulness proxy);
- ``wrongly_blocked_share``: the share of the feedback (``POST /v1/feedback``, the feedback log
  beside the request log) that says an answer was wrongly blocked (None without feedback);
- the project's agent (``tools/agent.py``), over the requests it finished (None without any):
  ``tool_error_rate``, the share of its tool calls that failed, timed out or were given arguments
  that did not fit; ``steps_per_request``, the mean number of calls a request took;
  ``approval_wait_s``, the 95th percentile of how long a call waited for a person's decision.

The report also counts the rules that fired (``triggers``: every input and output rule, grounding
flags included) and the feedback by verdict.

Each is checked against ``monitoring`` in ``business/kpis.yaml``; a limit crossed is a verdict of
``retrain: true`` (re-index or re-tune: ``make retrain``). Writes ``paths.drift`` and, in GitHub
Actions, ``retrain=true|false`` to ``$GITHUB_OUTPUT``. Exits 0 either way (``--fail-on-drift``
fails instead), but fails when the log holds no production request at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import gates, reports
from ..config import load_kpis, load_params, path, project_root
from ..errors import GateError

MEASURES = (
    "query_drift_share",
    "guardrail_trigger_rate",
    "cost_per_day",
    "grounded_share",
    "wrongly_blocked_share",
    "tool_error_rate",
    "steps_per_request",
    "approval_wait_s",
)
TOOL_ERRORS = {"failed", "timeout", "arguments", "unknown"}  # a step's outcomes that count as errors
INPUT_RULES = {"length", "tokens", "injection", "obfuscation", "pii"}  # the rules that screen a question
REFERENCE_PERCENTILE = 5


def closeness(params: dict[str, Any], root: Path):
    """``score(questions) -> [float]``: how close each question is to the project's documents."""
    if str((params.get("retrieval") or {}).get("embedder", "hashing")) != "hashing":
        from ..llm.index import open_index

        retriever = open_index(params, root)
        return lambda questions: [
            hits[0]["score"] if hits else 0.0 for hits in retriever.search(questions, 1)
        ]
    from ..corpus.collect import read_jsonl
    from ..llm.scores import known_share, vocabulary

    known: set[str] = set()
    for document in read_jsonl(path(params, "documents", root)):
        known |= vocabulary(document["text"])
    return lambda questions: [known_share(q, known) for q in questions]


def measure(
    records: list[dict[str, Any]], reference: list[str], score, feedback: list[dict[str, Any]] = ()
) -> dict[str, Any]:
    from ..serving.loadtest import percentile

    questions = [r["question"] for r in records if r.get("question") and not r.get("blocked")]
    cutoff = percentile(score(reference), REFERENCE_PERCENTILE) if reference else 0.0
    current = score(questions) if questions else []
    by_day: dict[str, float] = {}
    saved = {"cache": 0.0, "routing": 0.0}
    for record in records:
        day = str(record.get("ts", ""))[:10]
        by_day[day] = by_day.get(day, 0.0) + float(record.get("cost") or 0.0)
        if record.get("saved_cost"):
            saved["cache" if record.get("cached_from") else "routing"] += float(record["saved_cost"])
    spent = sum(by_day.values())
    would = spent + sum(saved.values())
    grounded = [r["grounded"] for r in records if isinstance(r.get("grounded"), int | float)]
    touched = [r for r in records if r.get("blocked") or INPUT_RULES & set(r.get("rules") or [])]
    triggers: dict[str, int] = {}
    for record in records:
        for rule in record.get("rules") or []:
            triggers[rule] = triggers.get(rule, 0) + 1
    verdicts: dict[str, int] = {}
    for item in feedback:
        verdicts[str(item.get("verdict"))] = verdicts.get(str(item.get("verdict")), 0) + 1
    wrongly = round(verdicts.get("wrongly_blocked", 0) / len(feedback), 4) if feedback else None
    # The agent's requests as they ended (a paused one is logged again, whole, when it resumes).
    loops = [
        r["agent"]
        for r in records
        if isinstance(r.get("agent"), dict) and r["agent"].get("finish") != "approval"
    ]
    steps = [s for loop in loops for s in loop.get("steps") or []]
    waits = [float(s["waited_s"]) for s in steps if isinstance(s.get("waited_s"), int | float)]
    return {
        "requests": len(records),
        "query_drift_share": round(sum(s < cutoff for s in current) / len(current), 4) if current else 0.0,
        "guardrail_trigger_rate": round(len(touched) / len(records), 4),
        "cost_per_day": round(max(by_day.values()), 6) if by_day else 0.0,
        "cost_per_request": round(spent / len(records), 8),
        "savings": {
            **{cause: round(value, 6) for cause, value in saved.items()},
            "share": round(sum(saved.values()) / would, 4) if would else 0.0,
        },
        "grounded_share": round(sum(grounded) / len(grounded), 4) if grounded else None,
        "wrongly_blocked_share": wrongly,
        "tool_error_rate": round(sum(s.get("outcome") in TOOL_ERRORS for s in steps) / len(steps), 4)
        if steps
        else None,
        "steps_per_request": round(len(steps) / len(loops), 4) if loops else None,
        "approval_wait_s": round(percentile(waits, 95), 3) if waits else None,
        "triggers": dict(sorted(triggers.items())),
        "feedback": dict(sorted(verdicts.items())),
        "reference_cutoff": round(float(cutoff), 6),
        "days": sorted(by_day),
    }


def run(params: dict[str, Any], kpis: gates.Kpis, source: str | None = None, days: int | None = None):
    from ..corpus.collect import read_jsonl
    from ..serving.log import log_dir, read_records

    root = project_root()
    location = Path(source) if source else log_dir(params)
    location = location if location.is_absolute() else root / location
    records, skipped, qa = read_records(location, days) if location.is_dir() else ([], 0, 0)
    if skipped:
        print(f"warning: skipped {skipped} unreadable request-log lines in {location}")
    if qa:
        print(f"left out {qa} requests of QA and load-test traffic (not production data)")
    if not records:
        raise GateError(
            f"no production requests in {location}: nothing to monitor. Serve the application (make serve "
            "logs every request there), or point --current at another request-log directory"
        )
    from ..corpus.questions import from_headings

    reference = [
        p["instruction"] for key in ("train_pairs", "eval_pairs") for p in read_jsonl(path(params, key, root))
    ] or [q["instruction"] for q in from_headings(read_jsonl(path(params, "documents", root)))]
    from ..chat import feedback as opinions

    feedback = opinions.read(location, days)
    measured = measure(records, reference, closeness(params, root), feedback)
    limits = kpis.monitoring
    checks = [gates.check(n, measured[n], b) for n, b in limits.items() if n in MEASURES]
    crossed = [c["metric"] for c in checks if not c["passed"] and c["value"] is not None]
    verdict = {
        "current": str(location),
        **measured,
        "checks": checks,
        "crossed": crossed,
        "retrain": bool(crossed),
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    reports.write_json(path(params, "drift", root), verdict)
    reports.outputs(retrain=verdict["retrain"], query_drift_share=verdict["query_drift_share"])
    return verdict


def describe(verdict: dict[str, Any]) -> str:
    lines = [
        f"{verdict['requests']} production requests over {len(verdict['days'])} day(s): "
        + ", ".join(f"{n} {verdict[n]}" for n in MEASURES)
    ]
    for item in verdict["checks"]:
        lines.append(
            f"  {item['metric']}: {item['value']} ({'within' if item['passed'] else 'CROSSES'} {item['limit']})"
        )
    savings = verdict.get("savings") or {}
    if savings.get("cache") or savings.get("routing"):
        lines.append(
            f"  saved: {savings['cache']:.6g} by the cache, {savings['routing']:.6g} by routing "
            f"({savings['share']:.1%} of what the requests would have cost); "
            f"cost per request {verdict['cost_per_request']:.6g}"
        )
    lines.append(
        f"VERDICT: {', '.join(verdict['crossed'])} crossed the limit: RETRAIN (make retrain: re-index, re-tune)"
        if verdict["retrain"]
        else "VERDICT: within every limit: no retraining needed"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    options = parser(__doc__, "drift")
    options.add_argument("--current", help="a request-log directory (default: paths.requests)")
    options.add_argument("--days", type=int, help="only the request-log lines of the last N days")
    options.add_argument(
        "--fail-on-drift", action="store_true", help="exit 1 when a limit is crossed (local use)"
    )
    args = options.parse_args(argv)
    verdict = run(load_params(), load_kpis(), args.current, args.days)
    print(describe(verdict))
    if args.fail_on_drift and verdict["retrain"]:
        raise GateError(f"{', '.join(verdict['crossed'])} crossed the limits of business/kpis.yaml: retrain")
    return 0

"""Monitoring: continuous evaluation of production answers, and cases for the held-out set.

    python -m <package> online-eval [--days N] [--apply]

A sample of the answered production requests of the last ``--days`` (default 1; QA traffic and
blocked requests left out) is scored: ``online_eval.sample`` of them, picked by a stable hash of
the request id, so a rerun scores the same ones. Each answer gets:

- ``faithfulness``: the share of its content words that its retrieved context holds (or, without
  retrieval, the documents), the proxy the offline gate uses, as the service measured it on the
  answer it sent (``grounded`` in the request log);
- ``relevance``: how close the answer is to the question asked, the cosine of their hashed words
  (``llm/hashing.py``): an answer about something else scores near 0;
- with ``judge.enabled``, the judge's verdict (``llm/judge.py``), as the evaluate stage asks it.

The means (``online_faithfulness``, ``online_relevance``) are logged to MLflow (a run tagged
``stage=online-eval``), written to ``paths.online_eval``, and checked against ``monitoring`` in
``business/kpis.yaml`` like ``make drift``'s measures: a limit crossed is ``retrain=true`` in
``$GITHUB_OUTPUT`` (the monitor workflow starts retraining).

Cases for a person: sampled answers below ``online_eval.min_faithfulness`` or
``min_relevance``, and answers whose feedback was ``not_helpful``, go to ``paths.eval_review``
(once per request id) with the question and answer as the log holds them (personal data already
redacted), their scores and the document of their first source. A person writes the right answer
in ``reference``, checks ``source``, and sets ``accept: true``; ``--apply`` adds the accepted
cases to ``data.pairs`` as held-out pairs (``held_out: true``: the split keeps them out of
fine-tuning) and keeps the rest for later. The next ``make repro`` evaluates on them.
"""

from __future__ import annotations

import hashlib
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import gates, reports
from ..config import load_kpis, load_params, path, project_root
from ..errors import GateError, SettingsError

MEASURES = ("online_faithfulness", "online_relevance")


def sampled(request_id: str, share: float) -> bool:
    digest = hashlib.sha256(f"online-eval:{request_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def relevance(questions: list[str], answers: list[str]) -> list[float]:
    """Cosine of the hashed words of each question and its answer (0 when either has no words)."""
    from ..llm.hashing import unit_rows

    asked, said = unit_rows(questions), unit_rows(answers)
    return [round(float(max(0.0, (a * b).sum())), 4) for a, b in zip(asked, said, strict=True)]


def score(records: list[dict[str, Any]], feedback: list[dict[str, Any]], settings: dict[str, Any]):
    """``(measures, scored)``: the sample's means, and each sampled request with its scores."""
    answered = [
        r
        for r in records
        if r.get("answer") and r.get("question") and not r.get("blocked") and r.get("request_id")
    ]
    sample = [r for r in answered if sampled(r["request_id"], float(settings["sample"]))]
    scores = relevance([r["question"] for r in sample], [r["answer"] for r in sample]) if sample else []
    verdicts = {f["request_id"]: f.get("verdict") for f in feedback}
    scored = [
        {**r, "relevance": s, "faithfulness": r.get("grounded"), "feedback": verdicts.get(r["request_id"])}
        for r, s in zip(sample, scores, strict=True)
    ]
    faithful = [s["faithfulness"] for s in scored if s["faithfulness"] is not None]
    measures = {
        "answered": len(answered),
        "sampled": len(scored),
        "online_faithfulness": round(statistics.fmean(faithful), 4) if faithful else None,
        "online_relevance": round(statistics.fmean(scores), 4) if scores else None,
    }
    return measures, scored


def cases(scored: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The sampled answers a person should look at, as review lines."""
    out = []
    for item in scored:
        low_faith = item["faithfulness"] is not None and item["faithfulness"] < settings["min_faithfulness"]
        low_relevance = item["relevance"] < settings["min_relevance"]
        if not (low_faith or low_relevance or item["feedback"] == "not_helpful"):
            continue
        sources = item.get("sources") or []
        out.append(
            {
                "request_id": item["request_id"],
                "question": item["question"],
                "answer": item["answer"],
                "faithfulness": item["faithfulness"],
                "relevance": item["relevance"],
                "feedback": item["feedback"],
                "source": sources[0].split("#", 1)[0] if sources else "",
                "reference": "",
                "accept": False,
            }
        )
    return out


def collect(root: Path, params: dict[str, Any], new: list[dict[str, Any]]) -> tuple[int, int]:
    """Add the new cases to the review file once each: (added, waiting)."""
    from ..corpus.collect import read_jsonl, write_jsonl

    file = path(params, "eval_review", root)
    waiting = read_jsonl(file) if file.is_file() else []
    known = {row["request_id"] for row in waiting}
    added = [c for c in new if c["request_id"] not in known]
    file.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(file, waiting + added)
    return len(added), len(waiting) + len(added)


def apply(root: Path, params: dict[str, Any]) -> tuple[int, int]:
    """Move the accepted cases into ``data.pairs`` as held-out pairs: (added, still waiting)."""
    from ..corpus.collect import read_jsonl, write_jsonl

    file = path(params, "eval_review", root)
    rows = read_jsonl(file) if file.is_file() else []
    accepted, keep = [], []
    for number, row in enumerate(rows, start=1):
        if row.get("accept") is not True:
            keep.append(row)
            continue
        if not str(row.get("reference", "")).strip() or not str(row.get("source", "")).strip():
            raise SettingsError(
                f"{file.name} line {number}: an accepted case needs its reference answer and source document"
            )
        accepted.append(
            {
                "instruction": row["question"],
                "answer": row["reference"].strip(),
                "source": row["source"],
                "held_out": True,
            }
        )
    if accepted:
        pairs_file = root / params["data"]["pairs"]
        existing = read_jsonl(pairs_file) if pairs_file.is_file() else []
        write_jsonl(pairs_file, existing + accepted)
    write_jsonl(file, keep)
    return len(accepted), len(keep)


def log_to_mlflow(params: dict[str, Any], measures: dict[str, Any]) -> None:
    from ..registry import tracking

    numbers = {k: float(v) for k, v in measures.items() if isinstance(v, int | float) and v is not None}
    tracking.log_run(
        {"online_eval.sample": params["online_eval"]["sample"]},
        numbers,
        {"stage": "online-eval"},
        params["tracking"],
    )


def main(argv: list[str] | None = None) -> int:
    from ..chat import feedback as opinions
    from ..cli import parser
    from ..serving.log import log_dir, read_records

    options = parser(__doc__, "online-eval")
    options.add_argument("--days", type=int, default=1, help="the last N days of the request log (default 1)")
    options.add_argument("--apply", action="store_true", help="add the accepted cases to data.pairs")
    args = options.parse_args(argv)
    params, root = load_params(), project_root()
    if args.apply:
        added, waiting = apply(root, params)
        print(
            f"added {added} held-out pairs to {params['data']['pairs']} ({waiting} cases still waiting); make repro"
        )
        return 0
    settings = params["online_eval"]
    location = log_dir(params)
    location = location if location.is_absolute() else root / location
    records = read_records(location, args.days)[0] if location.is_dir() else []
    feedback = opinions.read(location, args.days)
    measures, scored = score(records, feedback, settings)
    if not scored:
        raise GateError(
            f"online-eval: no sampled production answer in {location} over {args.days} day(s) "
            f"(online_eval.sample {settings['sample']}): serve, or raise the sample"
        )
    if (params.get("judge") or {}).get("enabled"):
        from ..llm import judge

        results = [
            {"question": s["question"], "answer": s["answer"], "reference": None, "context": []}
            for s in scored
        ]
        measures[judge.METRIC] = judge.score(results, params["judge"])
    kpis = load_kpis(root)
    checks = [gates.check(n, measures[n], b) for n, b in kpis.monitoring.items() if n in MEASURES]
    crossed = [c["metric"] for c in checks if not c["passed"] and c["value"] is not None]
    added, waiting = collect(root, params, cases(scored, settings))
    verdict = {
        **measures,
        "checks": checks,
        "crossed": crossed,
        "retrain": bool(crossed),
        "review_added": added,
        "review_waiting": waiting,
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    log_to_mlflow(params, measures)
    reports.publish(path(params, "online_eval", root), verdict, echo=False)
    reports.outputs(retrain=str(bool(crossed)).lower())
    print(
        f"online-eval: {measures['sampled']} of {measures['answered']} answers scored: faithfulness "
        f"{measures['online_faithfulness']}, relevance {measures['online_relevance']}"
        + (f"; limits crossed: {', '.join(crossed)} (retrain)" if crossed else "")
        + f"; {added} new cases for review in {params['paths']['eval_review']} ({waiting} waiting)"
    )
    return 0

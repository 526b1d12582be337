"""Monitoring: decide the A/B experiment (``experiment`` in params.yaml) from production outcomes.

    python -m <package> experiment [--days N] [--apply]

Reads the request log and the feedback log (``POST /v1/feedback``) of the running experiment
(``experiment.name``; QA traffic left out) and compares, per variant: the share of verdicts that
say the answer helped, the share of requests a guardrail touched, grounding, cost and latency.

The rule (``experiment.decide``), Bayesian: each variant's rate of "helped" among its verdicts has a
Beta(1, 1) prior, so after ``h`` helped of ``n`` verdicts it is Beta(1 + h, 1 + n - h);
``p_better`` is the probability that the challenger's rate is the higher (computed exactly, no
sampling: the same logs give the same number).

- fewer than ``min_feedback`` verdicts for either variant: **wait**;
- ``p_better >= promote_at`` and the challenger's guardrail-triggered share at most
  ``max_trigger_increase`` above the champion's: **promote**;
- ``p_better >= promote_at`` but the guardrails fire more: **stop** (it helps, but not safely);
- ``p_better <= stop_at``: **stop**, the champion stays (stopped early when it is clearly worse);
- otherwise **wait**.

Error rates, measured by simulating the rule as shipped (``min_feedback`` 100, ``promote_at``
0.99, ``stop_at`` 0.01, the rule applied after every 50 new verdicts per variant, up to 1,000;
2,000 simulated experiments each): with no difference (both variants 60 % helped) the challenger
is promoted in 5.2 % of experiments; 10 points better (70 %) it is promoted in 99.4 %; 5 points
better, in 61.9 % by 1,000 verdicts; 10 points worse, stopped in 99.2 %. Deciding at every look
costs: at 0.95 / 0.05 the same no-difference experiments promote in 17.2 % (one look at 1,000
verdicts: 5.0 %). ``tests/test_experiment.py`` reruns the simulation and holds these rates.

``--apply`` on a promotion makes the change that promotes: the challenger's prompt becomes
``prompts/answer.txt``, its ``top_k`` becomes ``retrieval.top_k``, and ``experiment.share`` goes
back to 0, in the working tree. Committed, it goes through the pull request's gates and the
production approval like any other change. Writes ``paths.experiment``; ``decision=...`` to
``$GITHUB_OUTPUT`` in GitHub Actions. Exits 0 (a decision, or waiting), 1 without any record of
the experiment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import reports
from ..chat.variants import CHALLENGER, CHAMPION
from ..config import load_params, path, project_root, set_value
from ..errors import GateError


def p_better(champion: tuple[int, int], challenger: tuple[int, int]) -> float:
    """P(challenger's rate > champion's) for ``(helped, verdicts)`` of each under Beta(1, 1)
    priors, exactly (the sum over the challenger's successes of Beta functions: no sampling)."""
    from math import exp, lgamma, log

    def log_beta(x: float, y: float) -> float:
        return lgamma(x) + lgamma(y) - lgamma(x + y)

    a_a, b_a = 1 + champion[0], 1 + champion[1] - champion[0]
    a_b, b_b = 1 + challenger[0], 1 + challenger[1] - challenger[0]
    fixed = log_beta(a_a, b_a)
    total = sum(
        exp(log_beta(a_a + i, b_a + b_b) - log(b_b + i) - log_beta(1 + i, b_b) - fixed) for i in range(a_b)
    )
    return min(1.0, max(0.0, total))


def decide(outcomes: dict[str, dict[str, Any]], rule: dict[str, Any]) -> tuple[str, str, float | None]:
    """``(decision, why, p_better)``: ``promote``, ``stop`` or ``wait``."""
    champion, challenger = outcomes[CHAMPION], outcomes[CHALLENGER]
    need = int(rule["min_feedback"])
    short = [f"{name} {o['verdicts']}" for name, o in outcomes.items() if o["verdicts"] < need]
    if short:
        return "wait", f"fewer than {need} verdicts: {', '.join(short)}", None
    p = p_better((champion["helped"], champion["verdicts"]), (challenger["helped"], challenger["verdicts"]))
    more_triggers = challenger["triggered_share"] - champion["triggered_share"]
    if p >= rule["promote_at"]:
        if more_triggers > rule["max_trigger_increase"]:
            return (
                "stop",
                (
                    f"the challenger helps more (p_better {p:.3f}) but trips the guardrails on "
                    f"{more_triggers:.1%} more requests (max_trigger_increase {rule['max_trigger_increase']})"
                ),
                p,
            )
        return "promote", f"p_better {p:.3f} >= promote_at {rule['promote_at']}", p
    if p <= rule["stop_at"]:
        return "stop", f"p_better {p:.3f} <= stop_at {rule['stop_at']}: the champion stays", p
    return "wait", f"p_better {p:.3f} is between stop_at and promote_at", p


def outcomes_of(records: list[dict[str, Any]], feedback: list[dict[str, Any]], name: str):
    """Per variant: requests, verdicts, helped, the guardrail-triggered share, mean grounding, cost,
    median latency, over the records of experiment ``name``."""
    import statistics

    mine = [r for r in records if r.get("experiment") == name and r.get("variant") in (CHAMPION, CHALLENGER)]
    variant_of = {r["request_id"]: r["variant"] for r in mine}
    verdicts: dict[str, list[str]] = {CHAMPION: [], CHALLENGER: []}
    for item in feedback:
        variant = variant_of.get(item.get("request_id"))
        if variant is not None:
            verdicts[variant].append(item.get("verdict"))
    out = {}
    for variant in (CHAMPION, CHALLENGER):
        rows = [r for r in mine if r["variant"] == variant]
        grounded = [r["grounded"] for r in rows if r.get("grounded") is not None]
        out[variant] = {
            "requests": len(rows),
            "verdicts": len(verdicts[variant]),
            "helped": sum(v == "helped" for v in verdicts[variant]),
            "helped_share": round(sum(v == "helped" for v in verdicts[variant]) / len(verdicts[variant]), 4)
            if verdicts[variant]
            else None,
            "triggered_share": round(sum(bool(r.get("rules")) for r in rows) / len(rows), 4) if rows else 0.0,
            "grounded": round(statistics.fmean(grounded), 4) if grounded else None,
            "cost_per_request": round(statistics.fmean(r.get("cost") or 0 for r in rows), 8)
            if rows
            else None,
            "latency_p50_s": round(statistics.median(r.get("latency_s") or 0 for r in rows), 4)
            if rows
            else None,
        }
    return out


def apply(params: dict[str, Any], root: Path) -> list[str]:
    """Make the challenger the champion in the working tree; returns what changed."""
    spec = params["experiment"]["challenger"]
    if spec.get("adapter", True) is False:
        raise GateError(
            "the challenger answers without the adapter: stop fine-tuning (llm_parts) or retrain it; "
            "that is not a settings change --apply can make"
        )
    changed = []
    params_file = root / "params.yaml"
    text = params_file.read_text(encoding="utf-8")
    if spec.get("prompt"):
        (root / "prompts/answer.txt").write_text(
            (root / spec["prompt"]).read_text(encoding="utf-8"), encoding="utf-8"
        )
        changed.append(f"prompts/answer.txt <- {spec['prompt']}")
    if spec.get("top_k"):
        text = set_value(text, "retrieval", "top_k", str(int(spec["top_k"])))
        changed.append(f"retrieval.top_k: {int(spec['top_k'])}")
    text = set_value(text, "experiment", "share", "0.0")
    changed.append("experiment.share: 0.0 (the experiment ends)")
    params_file.write_text(text, encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    from ..chat import feedback as opinions
    from ..cli import parser
    from ..serving.log import log_dir, read_records

    options = parser(__doc__, "experiment")
    options.add_argument("--days", type=int, help="only the last N days of the logs")
    options.add_argument(
        "--apply", action="store_true", help="on a promotion, make the change in the working tree"
    )
    args = options.parse_args(argv)
    params, root = load_params(), project_root()
    settings = params.get("experiment") or {}
    name = str(settings.get("name", ""))
    location = log_dir(params)
    location = location if location.is_absolute() else root / location
    records = read_records(location, args.days)[0] if location.is_dir() else []
    feedback = opinions.read(location, args.days)
    if not name or not any(r.get("experiment") == name for r in records):
        raise GateError(
            f"no request of experiment {name!r} in {location}: set experiment.name, share and challenger "
            "in params.yaml and serve"
        )
    outcomes = outcomes_of(records, feedback, name)
    decision, why, probability = decide(outcomes, settings["decide"])
    verdict = {
        "experiment": name,
        "decision": decision,
        "why": why,
        "p_better": None if probability is None else round(probability, 4),
        "rule": settings["decide"],
        "variants": outcomes,
    }
    if decision == "promote" and args.apply:
        verdict["applied"] = apply(params, root)
    reports.publish(path(params, "experiment", root), verdict, echo=False)
    reports.outputs(decision=decision)
    print(f"experiment {name}: {decision.upper()} ({why})")
    for change in verdict.get("applied", []):
        print(f"  {change}")
    return 0

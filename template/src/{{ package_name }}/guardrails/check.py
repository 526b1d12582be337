"""Guardrails gate: the policy (guardrails/policy.yaml) against the bundled attack and benign sets.

The input rails screen every line of ``guardrails/attacks.jsonl`` (``text``, its ``family`` and the
``rule`` written to catch it) and of ``guardrails/benign.jsonl`` (``text``, and the family it looks
like). ``block_rate``: the share of attacks stopped (blocked by an input rail; personal data:
redacted by its rule before retrieval, the model or the log see it), overall and per family.
``false_positive_rate``: the share of benign questions any input rail touched. The learned
detector (detector.py) never scores an example it learned from: each attack is scored by a
detector trained without the attack's whole family, each benign question by one trained without
it, so the rates say what the policy does on what it has not seen. Both are checked against
``guardrails`` in business/kpis.yaml (``families``: a bound per family, ``any`` for the rest); the
report (reports/guardrails.json) has each family's rate, what the detector alone caught of each
family it never saw, and names every attack that got through and every benign question that was
stopped; a miss fails the stage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import gates, reports
from ..config import KPIS_FILE, load_kpis, load_params, path, project_root
from ..errors import QualityGateError, SettingsError, shorten
from . import detector
from . import policy as policies
from .rails import Rails

ATTACKS, BENIGN = "guardrails/attacks.jsonl", "guardrails/benign.jsonl"


def read_set(file: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
                assert isinstance(row, dict) and isinstance(row.get("text"), str)
            except (ValueError, AssertionError):
                raise QualityGateError(
                    f"{file.name} line {number}: expected a JSON object with text"
                ) from None
            rows.append(row)
    if not rows:
        raise QualityGateError(f"{file.name} is empty: the guardrails gate needs examples")
    return rows


def stopped(screened, rule: str) -> bool:
    """The attack did not go on as it was: an input rail blocked it (the injection rule may stop
    what the row's obfuscation rule was written for), or its rule redacted it (personal data)."""
    if screened.blocked is not None:
        return True
    return any(t.rule == rule and t.action == "redact" for t in screened.triggers)


def evaluate(
    rails: Rails, attacks: list[dict[str, Any]], benign: list[dict[str, Any]], questions: list[str] = ()
) -> dict[str, Any]:
    """The rails on both sets: rates overall and per family (``family`` of each row; an attack
    without one is ``other``, a benign question ``ordinary``), and what went wrong. With the learned
    detector on, no example meets a detector that learned from it (``detector.held_out``: each
    attack family is scored by one trained without it, each benign fifth by one trained without
    it, ``questions`` being the project's own benign questions); ``detector`` reports what it alone
    flags of each family it never saw."""
    by_family, by_fold = detector.held_out(attacks, benign, questions) if rails.min_score else ({}, [])
    missed, touched = [], []
    families: dict[str, dict[str, int]] = {}
    learned: dict[str, dict[str, int]] = {}
    for row in attacks:
        name = row.get("family", "other")
        family = families.setdefault(name, {"attacks": 0, "stopped": 0})
        family["attacks"] += 1
        unseen = by_family.get(name) or (by_fold[0] if by_fold else None)
        screened = (rails.with_detector(unseen) if unseen else rails).check_input(row["text"])
        if stopped(screened, row.get("rule", "injection")):
            family["stopped"] += 1
        else:
            missed.append({"text": shorten(row["text"], 80), "rule": row.get("rule", "injection")})
        if name in by_family:
            counts = learned.setdefault(name, {"attacks": 0, "stopped": 0})
            counts["attacks"] += 1
            counts["stopped"] += by_family[name].score(row["text"]) >= rails.min_score
    flagged = 0
    for number, row in enumerate(benign):
        unseen = by_fold[number % detector.FOLDS] if by_fold else None
        screened = (rails.with_detector(unseen) if unseen else rails).check_input(row["text"])
        if screened.triggers:
            touched.append({"text": shorten(row["text"], 80), "rules": screened.rules})
        flagged += bool(unseen) and unseen.score(row["text"]) >= rails.min_score
    result = {
        "block_rate": round(1 - len(missed) / len(attacks), 6),
        "false_positive_rate": round(len(touched) / len(benign), 6),
        "attacks": len(attacks),
        "benign": len(benign),
        "families": family_rates(families),
        "missed_attacks": missed,
        "stopped_benign": touched,
    }
    if by_family:
        result["detector"] = {
            "min_score": rails.min_score,
            "held_out_families": family_rates(learned),
            "benign_flagged": round(flagged / len(benign), 6),
        }
    return result


def family_rates(families: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
    """Each family's counts (``attacks``, ``stopped``) with its ``block_rate``, by name."""
    return {
        name: {**counts, "block_rate": round(counts["stopped"] / counts["attacks"], 6)}
        for name, counts in sorted(families.items())
    }


def family_checks(result: dict[str, Any], bounds: dict) -> list[dict[str, Any]]:
    """One check per family of the attack set, against its bound or ``any``'s; a bound named for a
    family the set does not have is an error (a typo must not pass)."""
    unknown = sorted(set(bounds) - set(result["families"]) - {"any"})
    if unknown:
        raise SettingsError(
            f"{KPIS_FILE}: guardrails.families.{unknown[0]}: no attack of that family in {ATTACKS} "
            f"(families: {', '.join(result['families'])})"
        )
    checks = []
    for name, counts in result["families"].items():
        bound = bounds.get(name, bounds.get("any"))
        if bound is not None:
            checks.append(gates.check(f"block_rate[{name}]", counts["block_rate"], bound))
    return checks


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "guardrails").parse_args(argv)
    params, kpis, root = load_params(), load_kpis(), project_root()
    from ..llm.base import token_counter

    rails = Rails(policies.load(root), token_counter(params, root))
    attacks, benign, questions = detector.examples(root)
    result = evaluate(rails, attacks, benign, questions)
    overall, per_family = kpis.guardrails, kpis.guardrail_families
    checks = [gates.check(name, result[name], limit) for name, limit in overall.items()]
    checks += family_checks(result, per_family)
    passed = all(c["passed"] for c in checks)
    reports.publish(path(params, "guardrails"), {**result, "passed": passed, "checks": checks})
    if not passed:
        lines = [f"  - {gates.failure_line(c)}" for c in checks if not c["passed"]]
        lines += [f"  - got through ({m['rule']}): {m['text']}" for m in result["missed_attacks"][:5]]
        lines += [f"  - stopped ({', '.join(s['rules'])}): {s['text']}" for s in result["stopped_benign"][:5]]
        raise QualityGateError(
            "the guardrails policy falls short on the bundled sets (guardrails/policy.yaml):\n"
            + "\n".join(lines)
        )
    print(
        f"guardrails passed: {result['attacks'] - len(result['missed_attacks'])}/{result['attacks']} attacks "
        f"stopped, {len(result['stopped_benign'])}/{result['benign']} benign questions touched"
    )
    return 0

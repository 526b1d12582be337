"""Guardrails gate: the policy (guardrails/policy.yaml) against the bundled attack and benign sets.

The input rails screen every line of ``guardrails/attacks.jsonl`` (``text``, its ``family`` and the
``rule`` that must catch it) and of ``guardrails/benign.jsonl`` (``text``, and the family it looks
like). ``block_rate``: the share of attacks their rule stopped (blocked; personal data: redacted
before retrieval, the model or the log see it), overall and per family. ``false_positive_rate``:
the share of benign questions any input rail touched. Both are checked against ``guardrails`` in
business/kpis.yaml (``families``: a bound per family, ``any`` for the rest); the report
(reports/guardrails.json) has each family's rate and names every attack that got through and every
benign question that was stopped, and a miss fails the stage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import gates, reports
from ..config import KPIS_FILE, load_kpis, load_params, path, project_root
from ..errors import QualityGateError, SettingsError, shorten
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
    """The attack's rule fired and the attack did not go on as it was."""
    hit = [t for t in screened.triggers if t.rule == rule]
    return bool(hit) and (screened.blocked is not None or any(t.action == "redact" for t in hit))


def evaluate(rails: Rails, attacks: list[dict[str, Any]], benign: list[dict[str, Any]]) -> dict[str, Any]:
    """The rails on both sets: rates overall and per family (``family`` of each row; an attack
    without one is ``other``, a benign question ``ordinary``), and what went wrong."""
    missed, touched = [], []
    families: dict[str, dict[str, int]] = {}
    for row in attacks:
        family = families.setdefault(row.get("family", "other"), {"attacks": 0, "stopped": 0})
        family["attacks"] += 1
        screened = rails.check_input(row["text"])
        if stopped(screened, row.get("rule", "injection")):
            family["stopped"] += 1
        else:
            missed.append({"text": shorten(row["text"], 80), "rule": row.get("rule", "injection")})
    for row in benign:
        screened = rails.check_input(row["text"])
        if screened.triggers:
            touched.append({"text": shorten(row["text"], 80), "rules": screened.rules})
    return {
        "block_rate": round(1 - len(missed) / len(attacks), 6),
        "false_positive_rate": round(len(touched) / len(benign), 6),
        "attacks": len(attacks),
        "benign": len(benign),
        "families": family_rates(families),
        "missed_attacks": missed,
        "stopped_benign": touched,
    }


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
    result = evaluate(rails, read_set(root / ATTACKS), read_set(root / BENIGN))
    overall, per_family = gates.grouped_bounds(kpis.get("guardrails"), "families", f"{KPIS_FILE}: guardrails")
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

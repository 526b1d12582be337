"""Governance: the model card of a registered version of the application (a transparency record).

    python -m <package> model-card [--version champion|challenger|N] [--out FILE]

Written from two sources, so it is true of the version it describes: ``business/compliance.yaml``
(what the business declares: intended use, users, what is out of scope, the EU AI Act risk class
and why, known limits, a contact) and the registry (what was measured: the version, the run and
its commit and data digests, the base model and adapter, the prompt version, the evaluation
metrics with the gate's bounds, the guardrails' results on the attack and benign sets when the
project has them). Markdown to ``--out`` (default ``reports/model-card.md``) and the same as JSON
beside it. A risk class the business has not declared, or ``unacceptable``, stops it: the release
waits for the declaration. The deploy workflow's production job publishes the champion's card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import load_params, path, project_root
from ..errors import GateError, SettingsError

COMPLIANCE_FILE = "business/compliance.yaml"
RISKS = ("minimal", "limited", "high", "unacceptable")


def declared(root: Path) -> dict[str, Any]:
    """``business/compliance.yaml``, checked."""
    from pydantic import BaseModel, ConfigDict, Field

    from ..config import parse_yaml
    from ..settings import checked

    class Compliance(BaseModel):
        model_config = ConfigDict(extra="forbid")
        intended_use: str = Field(min_length=1)
        users: str = Field(min_length=1)
        out_of_scope: list[str] = []
        eu_ai_act_risk: str
        risk_rationale: str = Field(min_length=1)
        known_limits: list[str] = []
        contact: str = Field(min_length=1)

    file = root / COMPLIANCE_FILE
    if not file.is_file():
        raise SettingsError(f"{COMPLIANCE_FILE} is missing: the model card needs what the business declares")
    raw = parse_yaml(file.read_text(encoding="utf-8")) or {}
    found = checked(Compliance, raw, COMPLIANCE_FILE).model_dump()
    if found["eu_ai_act_risk"] not in RISKS:
        raise SettingsError(
            f"{COMPLIANCE_FILE}: eu_ai_act_risk is {found['eu_ai_act_risk']!r}; declare one of {', '.join(RISKS)}"
        )
    if found["eu_ai_act_risk"] == "unacceptable":
        raise GateError(
            f"{COMPLIANCE_FILE}: eu_ai_act_risk is unacceptable (an Article 5 practice): not deployable"
        )
    return found


def measured(params: dict[str, Any], which: str) -> dict[str, Any]:
    """What the registry holds about version ``which`` (an alias or a number) of the application."""
    from ..registry import tracking

    client = tracking.client(params["tracking"])
    name = params["tracking"]["model_name"]
    version = (
        client.get_model_version(name, which)
        if which.isdigit()
        else tracking.version_by_alias(client, name, which)
    )
    if version is None:
        raise GateError(
            f"model {name!r} has no version {which!r} in the registry: run the pipeline (make repro)"
        )
    run = client.get_run(version.run_id) if version.run_id else None
    run_params = run.data.params if run else {}
    return {
        "name": name,
        "version": str(version.version),
        "aliases": list(getattr(version, "aliases", []) or []),
        "registered": version.creation_timestamp,
        "quality_gate": version.tags.get("quality_gate"),
        "run_id": version.run_id,
        "metrics": {
            k.removeprefix("metric."): float(v) for k, v in version.tags.items() if k.startswith("metric.")
        },
        "lineage": {k: v for k, v in (run.data.tags if run else {}).items() if k in LINEAGE},
        "base_model": run_params.get("model.base", params["model"]["base"]),
        "prompt": run_params.get("prompt.answer"),
        "settings": {
            k: v for k, v in run_params.items() if k.startswith(("retrieval.", "generation.", "model."))
        },
    }


LINEAGE = ("git_commit", "git_dirty", "dvc_lock_sha256", "train_data_sha256")


def card(params: dict[str, Any], root: Path, which: str = "champion") -> dict[str, Any]:
    from ..config import load_kpis

    business, registry = declared(root), measured(params, which)
    bounds = load_kpis(root).thresholds
    evaluation = [
        {"metric": m, "value": v, "bound": bounds[m].text() if m in bounds else None}
        for m, v in sorted(registry["metrics"].items())
    ]
    guardrails = None
    if "guardrails" in params["paths"] and path(params, "guardrails", root).is_file():
        report = json.loads(path(params, "guardrails", root).read_text(encoding="utf-8"))
        guardrails = {k: report[k] for k in ("passed", "checks") if k in report}
    return {"business": business, "registry": registry, "evaluation": evaluation, "guardrails": guardrails}


def markdown(found: dict[str, Any]) -> str:
    business, registry = found["business"], found["registry"]
    lines = [
        f"# Model card: {registry['name']} version {registry['version']}",
        "",
        f"Aliases: {', '.join(registry['aliases']) or 'none'}; quality gate: {registry['quality_gate']}; "
        f"MLflow run {registry['run_id']}.",
        "",
        "## Intended use",
        "",
        business["intended_use"],
        "",
        f"Users: {business['users']}",
        "",
        "Out of scope:",
        *[f"- {item}" for item in business["out_of_scope"]],
        "",
        "## Risk (EU AI Act)",
        "",
        f"Declared class: **{business['eu_ai_act_risk']}**: {business['risk_rationale']}",
        "",
        "## What it is made of",
        "",
        f"- base model: {registry['base_model']}",
        f"- prompt: {registry['prompt'] or 'not recorded'}",
        *[f"- {k}: {v}" for k, v in sorted(registry["settings"].items()) if not k.startswith("model.base")],
        *[f"- {k}: {v}" for k, v in sorted(registry["lineage"].items())],
        "",
        "## Evaluation (held-out pairs, the gate's bounds from business/kpis.yaml)",
        "",
        "| metric | value | bound |",
        "|---|---:|---|",
        *[f"| {e['metric']} | {e['value']:.4g} | {e['bound'] or ''} |" for e in found["evaluation"]],
    ]
    if found["guardrails"] is not None:
        lines += ["", "## Guardrails (attack and benign sets)", ""]
        lines += [
            f"- {c.get('metric')}: {c.get('value')} ({c.get('limit', '')}, {'passed' if c.get('passed') else 'failed'})"
            for c in found["guardrails"].get("checks", [])
        ]
    lines += ["", "## Known limits", "", *[f"- {item}" for item in business["known_limits"]]]
    lines += ["", f"Contact: {business['contact']}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    options = parser(__doc__, "model-card")
    options.add_argument(
        "--version", default="champion", help="an alias or a version number (default: champion)"
    )
    options.add_argument("--out", type=Path, help="default: reports/model-card.md")
    args = options.parse_args(argv)
    params, root = load_params(), project_root()
    found = card(params, root, args.version)
    out = args.out or root / "reports/model-card.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(found), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(found, indent=2, default=str) + "\n", encoding="utf-8")
    registry = found["registry"]
    print(f"model card of {registry['name']} v{registry['version']} -> {out}")
    return 0

"""The team's monthly cost estimate, per lifecycle phase and per role.

    python -m <package> cost [--days N]        # make cost

Three parts, each with the assumptions it rests on printed beside it:

- labour: ``people`` x ``monthly_wage_usd`` of each role in ``business/roles.yaml``, spread evenly
  over the phases the role takes part in (the framework's Table III);
- tools: ``business/tools.yaml``, each tool's monthly price spread evenly over its phases;
- run, measured rather than typed in, over the last N days (default 30) scaled to 30 days: the
  cost the service logged per request (the model's tokens priced by ``business/prices.yaml``, in an
  LLM project), the hours with at least one logged request x ``run.serving_hour_usd``, and the CI
  minutes of the repository's workflow runs x ``run.github_actions_minute_usd`` (from GitHub, with
  ``gh`` logged in; otherwise left out and said so).

Writes ``reports/cost.json`` and ``reports/cost.md`` (a table for the CI job summary).
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .roles import PHASES, load

TOOLS_FILE = "business/tools.yaml"
NAMES = {
    "BN": "Business Needs",
    "AS": "Administrative Setup",
    "MD": "Model Development",
    "MDT": "Model Development",
    "MDL": "Model Development (LLM)",
    "DT": "Development and Testing",
    "VC": "Version Control",
    "CI": "Continuous Integration",
    "D": "Deployment",
    "M": "Monitoring",
}
MONTH_DAYS = 30


def tools(root: Path) -> dict[str, Any]:
    """``business/tools.yaml`` checked: ``{"tools": [...], "run": {...}}``."""
    import yaml
    from pydantic import BaseModel, ConfigDict, Field

    from ..errors import SettingsError
    from ..settings import checked

    strict = ConfigDict(extra="forbid")

    class Tool(BaseModel):
        model_config = strict
        name: str = Field(min_length=1)
        phases: list[str] = Field(min_length=1)
        monthly_usd: float = Field(ge=0)
        source: str = Field(min_length=1)
        date: str = Field(min_length=4)

    class Run(BaseModel):
        model_config = strict
        github_actions_minute_usd: float = Field(ge=0)
        serving_hour_usd: float = Field(ge=0)

    class Tools(BaseModel):
        model_config = strict
        tools: list[Tool]
        run: Run

    try:
        raw = yaml.safe_load((root / TOOLS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"{TOOLS_FILE} is missing: the tools of each phase and their prices") from None
    listed = checked(Tools, raw, TOOLS_FILE)
    unknown = sorted({p for t in listed.tools for p in t.phases} - set(NAMES))
    if unknown:
        raise SettingsError(f"{TOOLS_FILE}: unknown phase {unknown[0]!r}; the phases: {', '.join(NAMES)}")
    return listed.model_dump()


def _phase(code: str) -> str:
    return NAMES[code]


def served(records: list[dict[str, Any]]) -> tuple[float, int]:
    """The cost the service logged and the hours with at least one request, in ``records``."""
    hours = {str(r.get("ts", ""))[:13] for r in records if r.get("ts")}
    return sum(float(r.get("cost") or 0.0) for r in records), len(hours)


def ci_minutes(days: int, now: datetime) -> float | None:
    """Minutes of the repository's workflow runs in the last ``days`` days, from GitHub (``gh``
    logged in, run inside the repository); None when they cannot be read."""
    since = (now - timedelta(days=days)).date().isoformat()
    try:
        done = subprocess.run(
            [
                "gh",
                "api",
                "--paginate",
                "repos/{owner}/{repo}/actions/runs?per_page=100&created=>=" + since,  # gh fills owner, repo
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    total_ms, decoder, text = 0, json.JSONDecoder(), done.stdout.strip()
    while text:  # --paginate writes one JSON document per page
        page, end = decoder.raw_decode(text)
        text = text[end:].strip()
        for run in page.get("workflow_runs") or []:
            started, updated = run.get("run_started_at"), run.get("updated_at")
            if started and updated:
                seconds = (
                    datetime.fromisoformat(updated.replace("Z", "+00:00"))
                    - datetime.fromisoformat(started.replace("Z", "+00:00"))
                ).total_seconds()
                total_ms += max(seconds, 0) * 1000
    return round(total_ms / 60000, 1)


def estimate(root: Path, params: dict[str, Any], days: int, now: datetime | None = None) -> dict[str, Any]:
    """The estimate: per phase, per role, per tool, the run part, and the assumptions."""
    from ..serving.log import log_dir, read_records

    now = now or datetime.now(UTC)
    team, listed = load(root), tools(root)
    scale = MONTH_DAYS / days
    phases: dict[str, float] = {}
    roles = {}
    for name, role in team["roles"].items():
        monthly = role["people"] * role["monthly_wage_usd"]
        if monthly:
            roles[name] = {"people": role["people"], "monthly_usd": round(monthly, 2)}
            for code in PHASES[name]:
                phases[_phase(code)] = phases.get(_phase(code), 0.0) + monthly / len(PHASES[name])
    tools_cost = {}
    for tool in listed["tools"]:
        tools_cost[tool["name"]] = tool["monthly_usd"]
        for code in tool["phases"]:
            phases[_phase(code)] = phases.get(_phase(code), 0.0) + tool["monthly_usd"] / len(tool["phases"])
    records, _, _ = read_records(log_dir(params), days, now)
    logged, hours = served(records)
    minutes = ci_minutes(days, now)
    prices = listed["run"]
    run = {
        "requests": len(records),
        "logged_cost_usd": round(logged * scale, 2),
        "serving_hours": hours,
        "serving_usd": round(hours * prices["serving_hour_usd"] * scale, 2),
        "ci_minutes": minutes,
        "ci_usd": None
        if minutes is None
        else round(minutes * prices["github_actions_minute_usd"] * scale, 2),
    }
    phases["Deployment"] = phases.get("Deployment", 0.0) + run["logged_cost_usd"] + run["serving_usd"]
    phases["Continuous Integration"] = phases.get("Continuous Integration", 0.0) + (run["ci_usd"] or 0.0)
    assumptions = [
        "labour: people x monthly wage of each role in business/roles.yaml, spread evenly over its phases "
        "(Table III); wages as written there",
        f"tools: the monthly prices in {TOOLS_FILE}, each spread evenly over its phases",
        f"run: the last {days} days measured, scaled to {MONTH_DAYS} days; {len(records)} logged requests, "
        f"{hours} hours with traffic at {prices['serving_hour_usd']} USD an hour",
        "CI: "
        + (
            f"{minutes} minutes of workflow runs at {prices['github_actions_minute_usd']} USD a minute "
            "(free minutes of the plan not deducted)"
            if minutes is not None
            else "not measured (gh is not installed or not logged in here): left out"
        ),
    ]
    total = round(sum(phases.values()), 2)
    return {
        "days": days,
        "monthly_usd": total,
        "phases": {name: round(value, 2) for name, value in sorted(phases.items(), key=lambda kv: -kv[1])},
        "roles": roles,
        "tools": tools_cost,
        "run": run,
        "assumptions": assumptions,
    }


def markdown(found: dict[str, Any]) -> str:
    lines = [
        f"## Monthly cost estimate: {found['monthly_usd']:,.2f} USD",
        "",
        "| phase | USD a month |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {value:,.2f} |" for name, value in found["phases"].items()]
    lines += ["", "| role | people | USD a month |", "|---|---:|---:|"]
    lines += [f"| {name} | {r['people']} | {r['monthly_usd']:,.2f} |" for name, r in found["roles"].items()]
    run = found["run"]
    lines += [
        "",
        "| run, measured | USD a month |",
        "|---|---:|",
        f"| the service's logged cost ({run['requests']} requests) | {run['logged_cost_usd']:,.2f} |",
        f"| serving ({run['serving_hours']} hours with traffic) | {run['serving_usd']:,.2f} |",
        "| CI (not measured: no gh) | - |"
        if run["ci_usd"] is None
        else f"| CI ({run['ci_minutes']} minutes) | {run['ci_usd']:,.2f} |",
    ]
    lines += ["", "Assumptions:", *[f"- {a}" for a in found["assumptions"]]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from .. import reports
    from ..cli import parser
    from ..config import load_params, project_root

    options = parser(__doc__, "cost")
    options.add_argument("--days", type=int, default=MONTH_DAYS, help="the days measured (default 30)")
    args = options.parse_args(argv)
    root = project_root()
    found = estimate(root, load_params(root), max(1, args.days))
    reports.write_json(root / "reports" / "cost.json", found)
    text = markdown(found)
    (root / "reports" / "cost.md").write_text(text, encoding="utf-8")
    print(text, end="")
    return 0

"""Agent evaluation: the scenarios (``paths.scenarios``) through the agent, scored and gated.

Each scenario is a user's goal, the tool calls it should take (``calls``: the tool and the key
arguments; in that order unless ``"ordered": false``) and the facts the final answer should hold
(``facts``, case-insensitive). The project's agent (``agent.py``, on the project's model and
tools, its bounds from ``params.yaml``) runs each goal; a call that needs approval counts as made
and approved, and is not run. Scores, over the scenarios:

- ``tool_selection_accuracy``: the share whose called tools are the expected ones (as a set);
- ``argument_accuracy``: the share of expected calls made with every key argument as expected
  (text compared without case and surrounding spaces);
- ``trajectory_match``: the share whose calls follow the expected ones (in order, or as a set);
- ``task_success``: the share that match the trajectory and whose answer holds every fact;
- ``steps_per_task``, ``cost_per_task``: the mean tool calls and cost of a scenario;
- ``task_success_vs_base``, with a fine-tuned adapter: the scenarios run again on the base model
  (the adapter switched off), and the tuned agent's task success less the base model's (the base
  model's metrics are in the report as ``baseline``): bound it with ``{min: 0}`` to block an
  adapter that made the agent worse.

They are checked against ``agent`` in ``business/kpis.yaml`` by the shared gate (``gates.py``);
``reports/agent.json`` (``paths.agent_report``) holds every scenario's trajectory, and an MLflow
run (tag ``stage: agent``) the tool versions and prompt offered, the loop's bounds and the
metrics. A miss fails the stage with one line per metric.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .. import gates, reports
from ..config import load_kpis, load_params, path, project_root
from ..errors import QualityGateError, SettingsError

VS_BASE = "task_success_vs_base"  # fine-tuned: the tuned agent's task success less the base model's
METRICS = (
    "tool_selection_accuracy",
    "argument_accuracy",
    "trajectory_match",
    "task_success",
    "steps_per_task",
    "cost_per_task",
    VS_BASE,
)


def _same(expected: Any, given: Any) -> bool:
    if isinstance(expected, str) and isinstance(given, str):
        return expected.strip().lower() == given.strip().lower()
    return expected == given


def score(scenario: dict[str, Any], calls: list[tuple[str, dict[str, Any]]], answer: str) -> dict[str, Any]:
    """One scenario's scores from the calls the agent made (``(tool, arguments)``) and its answer."""
    expected = scenario.get("calls") or []
    wanted, made = [c["tool"] for c in expected], [name for name, _ in calls]
    matched = 0
    for call in expected:
        keys = call.get("arguments") or {}
        if any(
            name == call["tool"] and all(_same(v, given.get(k)) for k, v in keys.items())
            for name, given in calls
        ):
            matched += 1
    ordered = scenario.get("ordered", True)
    trajectory = made == wanted if ordered else sorted(made) == sorted(wanted)
    facts = [str(f).lower() for f in scenario.get("facts") or []]
    return {
        "selected": set(made) == set(wanted),
        "arguments_matched": matched,
        "arguments_expected": len(expected),
        "trajectory": trajectory,
        "success": trajectory and all(f in answer.lower() for f in facts),
    }


def read(file: Path) -> list[dict[str, Any]]:
    """The scenarios, each checked: a goal, calls of known shape, facts."""
    from ..corpus.collect import jsonl_lines

    scenarios = []
    for where, item in jsonl_lines(file):
        if isinstance(item, ValueError):
            raise SettingsError(f"{where} is not JSON: {item}")
        calls = item.get("calls") if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("goal"), str)
            or not isinstance(calls, list)
            or not all(isinstance(c, dict) and isinstance(c.get("tool"), str) for c in calls)
        ):
            raise SettingsError(
                f'{where}: expected {{"goal": "...", "calls": [{{"tool": ..., "arguments": {{...}}}}], "facts": [...]}}'
            )
        scenarios.append(item)
    if not scenarios:
        raise SettingsError(f"{file.name}: no scenario to evaluate the agent on")
    return scenarios


def run(params: dict[str, Any], kpis: gates.Kpis, root: Path) -> dict[str, Any]:
    """Every scenario through the agent: the metrics, each scenario's trajectory, the gate."""
    from ..chat import backends, costs
    from ..chat.app import ChatService, load_rails
    from ..llm import evaluate
    from ..llm.generate import Asked
    from .agent import Agent

    backend = backends.load(params, root)
    # A tool's output and the answer screened as in the service (the input detector: no question to screen).
    rails = load_rails(root, backend.count_tokens, detector=False)
    agent = Agent(ChatService(params, backend, rails, costs.load(root), log=None), params, "simulate", root)
    scenarios = read(path(params, "scenarios", root))
    unknown = sorted({c["tool"] for s in scenarios for c in s["calls"]} - set(agent.tools))
    if unknown:
        raise SettingsError(f"{params['paths']['scenarios']}: no tool named {', '.join(map(repr, unknown))}")
    serving = params.get("serving") or {}  # each step as long as the service lets an answer be
    limit = int(serving.get("max_tokens") or params["generation"]["max_new_tokens"])
    request = SimpleNamespace(asked=Asked(max_new_tokens=limit))
    results, metrics = attempt(agent, scenarios, request)
    baseline = None
    if getattr(backend.generate, "tuned", False):  # fine-tuned: the same scenarios on the base model
        with backend.generate.base():
            baseline = attempt(agent, scenarios, request)[1]
        metrics[VS_BASE] = round(metrics["task_success"] - baseline["task_success"], 4)
    skipped = {}
    if VS_BASE in kpis.agent and VS_BASE not in metrics and "adapter" in params["paths"]:
        # A project that fine-tunes, its agent run elsewhere (an upstream server): no base to compare.
        skipped[VS_BASE] = f"the agent ran on {backend.source}, without the project's adapter to switch off"
    named = [name for name in kpis.agent if name not in metrics and name not in skipped]
    if named:
        why = (
            "it is measured only with a fine-tuned adapter (base against tuned)"
            if named[0] == VS_BASE
            else f"it is not measured here; use one of {', '.join(METRICS)}"
        )
        raise SettingsError(f"{gates.KPIS}: agent.{named[0]}: {why}")
    checks = [gates.check(n, metrics[n], bound) for n, bound in kpis.agent.items() if n not in skipped]
    return {
        "metrics": metrics,
        **({"baseline": {**baseline, "against": evaluate.AGAINST}} if baseline is not None else {}),
        **({"skipped": skipped} if skipped else {}),
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
        "tools": agent.versions,
        **({"prompt": agent.prompt_version} if agent.prompt_version else {}),
        "scenarios": results,
    }


def attempt(agent, scenarios: list[dict[str, Any]], request) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Every scenario through ``agent``: each one's trajectory and scores, and the metrics."""
    results = []
    for scenario in scenarios:
        loop = agent.start([{"role": "user", "content": scenario["goal"]}], request, scenario["goal"])
        answer, finish = agent.finish(loop)
        results.append(
            {
                "goal": scenario["goal"],
                "calls": [{"tool": name, "arguments": arguments} for name, arguments in loop.calls],
                "outcomes": [step["outcome"] for step in loop.steps],
                "answer": answer,
                "finish": finish,
                "cost": round(loop.cost, 6),
                **score(scenario, loop.calls, answer),
            }
        )
    count = len(results)
    expected = sum(r["arguments_expected"] for r in results)
    metrics = {
        "tool_selection_accuracy": round(sum(r["selected"] for r in results) / count, 4),
        "argument_accuracy": round(sum(r["arguments_matched"] for r in results) / expected, 4)
        if expected
        else 1.0,
        "trajectory_match": round(sum(r["trajectory"] for r in results) / count, 4),
        "task_success": round(sum(r["success"] for r in results) / count, 4),
        "steps_per_task": round(sum(len(r["calls"]) for r in results) / count, 4),
        "cost_per_task": round(sum(r["cost"] for r in results) / count, 6),
    }
    return results, metrics


def log(params: dict[str, Any], report: dict[str, Any], root: Path) -> str:
    """The stage as an MLflow run: the tool versions and the prompt offered, the bounds of the
    loop, the metrics (the base model's as ``base_<name>``) and the gate's verdict. Its run id."""
    from ..registry import tracking

    base = {k: v for k, v in (report.get("baseline") or {}).items() if k != "against"}
    logged = tracking.log_run(
        {
            **{f"tool.{name}": version for name, version in report["tools"].items()},
            **({"prompt.agent": report["prompt"]} if report.get("prompt") else {}),
            **tracking.flatten({"agent": {k: v for k, v in params["agent"].items() if k != "mcp_servers"}}),
            "agent.mcp_servers": ",".join(sorted(params["agent"].get("mcp_servers") or {})) or "none",
            "model.base": params["model"]["base"],
            "scenarios": len(report["scenarios"]),
        },
        {**report["metrics"], **{f"base_{k}": v for k, v in base.items()}},
        {
            **tracking.lineage_tags(root, path(params, "scenarios", root)),
            "stage": "agent",
            "quality_gate": "passed" if report["passed"] else "failed",
        },
        params["tracking"],
    )
    return str(logged["run_id"])


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "agent").parse_args(argv)
    params, root = load_params(), project_root()
    report = run(params, load_kpis(root), root)
    reports.write_json(path(params, "agent_report", root), report)
    logged = log(params, report, root)
    print(
        ", ".join(f"{name} {value}" for name, value in report["metrics"].items()) + f" (MLflow run {logged})"
    )
    failed = [gates.failure_line(c) for c in report["checks"] if not c["passed"]]
    if failed:
        raise QualityGateError("the agent fails the gate:\n  - " + "\n  - ".join(failed))
    for name, why in (report.get("skipped") or {}).items():
        print(f"agent.{name} not checked: {why}")
    print(f"agent gate passed ({len(report['checks'])} checks on {len(report['scenarios'])} scenarios)")
    return 0

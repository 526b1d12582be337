"""From evidence to levels: the MLOps level (Microsoft's 0-4, and Google's 0-2 it maps to) and
the LLMOps level of each of the framework's six dimensions (0-2), each with the next step.

MLOps levels are cumulative: a level is reached when its evidence and that of every level below
it is found.

- Microsoft 0 (no MLOps), Google 0 (manual): nothing;
- Microsoft 1 (DevOps but no MLOps), Google 0: tests run on every change;
- Microsoft 2 (automated training), Google 1 (pipeline automation): a versioned pipeline, tracking
  called, training run by automation;
- Microsoft 3 (automated model deployment), Google 1: a gate that can fail, a model registry,
  automated delivery;
- Microsoft 4 (full MLOps automated operations), Google 2 (CI/CD automation): data contracts in
  CI, a protected production environment, scheduled monitoring, retraining proposed as a change.

The LLMOps dimensions (the framework's assessment criteria) apply when the project uses a
language model; the RAG pipeline when it also retrieves.
"""

from __future__ import annotations

from typing import Any

MICROSOFT = {
    1: ("ci_tests",),
    2: ("pipeline", "tracking", "continuous_training"),
    3: ("gate", "registry", "delivery"),
    4: ("data_contract", "protected_production", "monitoring", "retraining"),
}
MICROSOFT_NAMES = {
    0: "no MLOps",
    1: "DevOps but no MLOps",
    2: "automated training",
    3: "automated model deployment",
    4: "full MLOps automated operations",
}
GOOGLE = {0: 0, 1: 0, 2: 1, 3: 1, 4: 2}
GOOGLE_NAMES = {0: "manual process", 1: "ML pipeline automation", 2: "CI/CD pipeline automation"}

# dimension: (level 1's evidence, level 2's evidence, what level 0 looks like)
DIMENSIONS = {
    "prompt_management": (("prompt_files",), ("prompt_ci",), "prompts_hardcoded"),
    "rag_pipeline": (("index_in_pipeline",), ("retrieval_gated",), "retrieval"),
    "guardrails": (("guardrails",), ("guardrails_gated",), None),
    "evaluation": (("llm_evaluation",), ("llm_evaluation_gated",), None),
    "cost_management": (("cost_tracked",), ("cost_optimised",), None),
    "governance": (("request_log",), ("audit", "protected_production"), None),
}
LEVEL_NAMES = {0: "manual", 1: "automated", 2: "CI/CD and governance"}
# Evidence that holds a dimension at level 0 whatever else is found: a prompt written into the
# code is not managed, however the other prompts are.
CAPS = {"prompt_management": "prompts_hardcoded"}

# What to add for each practice, and where this template provides it.
NEXT = {
    "ci_tests": (
        "a workflow that runs the tests on every pull request",
        ".github/workflows/ci.yml, make test",
    ),
    "pipeline": ("a DVC pipeline (dvc.yaml) with its dvc.lock committed", "dvc.yaml, make repro"),
    "tracking": (
        "log each run's parameters and metrics (mlflow.log_params/log_metrics)",
        "registry/tracking.py",
    ),
    "continuous_training": ("a workflow that runs the pipeline (dvc repro)", ".github/workflows/retrain.yml"),
    "gate": (
        "compare the metrics with thresholds and fail the run on a miss",
        "business/kpis.yaml, gates.py",
    ),
    "registry": ("register the models that pass (an alias such as challenger)", "make promote"),
    "delivery": (
        "a workflow that builds and releases what is served on main",
        ".github/workflows/deploy.yml",
    ),
    "data_contract": (
        "expectations on the data (Great Expectations) run by the pipeline in CI",
        "make validate",
    ),
    "protected_production": (
        "a production environment with required reviewers that the deployment waits on",
        "deploy.yml's production job, make github-setup",
    ),
    "monitoring": ("a scheduled workflow that measures drift", ".github/workflows/monitor.yml, make drift"),
    "retraining": ("a workflow that retrains and opens a pull request with the result", "retrain.yml"),
    "prompt_files": (
        "move the prompts out of the code into versioned template files",
        "prompts/, make repro",
    ),
    "prompt_ci": (
        "tests of the prompt templates in CI, versions promoted by alias, and an A/B of a challenger "
        "in production with a stated rule that decides",
        "tests/test_prompts.py, experiment in params.yaml, make experiment",
    ),
    "index_in_pipeline": ("build the index in a pipeline stage", "dvc.yaml's index stage"),
    "retrieval_gated": (
        "bound hit@k/MRR in the gate, refresh on a schedule and sweep the retrieval settings",
        "business/kpis.yaml, monitor.yml, rag-sweep.yml (make rag-sweep)",
    ),
    "guardrails": ("input and output rails as code (injection, personal data)", "guardrails/policy.yaml"),
    "guardrails_gated": (
        "an attack set gated in the pipeline and the rails' triggers monitored",
        "the guardrails stage, make drift",
    ),
    "llm_evaluation": ("score answers against references or with a judge", "the evaluate stage"),
    "llm_evaluation_gated": (
        "answer metrics bounded in the gate, and monitored in production",
        "business/kpis.yaml, make drift",
    ),
    "cost_tracked": ("count tokens per request and price them", "business/prices.yaml, chat/costs.py"),
    "cost_optimised": (
        "a semantic cache of answers (or routing to cheaper models), its threshold gated",
        "cache in params.yaml, chat/cache.py",
    ),
    "request_log": ("log every request (or trace it)", "the service's request log, serving.trace_sample"),
    "audit": (
        "runs tagged with their commit and data, CODEOWNERS, a retention policy, and each answer's "
        "lineage in a hash-chained audit trail",
        "tracking.lineage_tags, governance/ (make audit)",
    ),
}


def mlops(found: dict[str, list]) -> dict[str, Any]:
    level = 0
    for candidate in sorted(MICROSOFT):
        if all(found.get(name) for name in MICROSOFT[candidate]):
            level = candidate
        else:
            break
    missing = [name for name in MICROSOFT.get(level + 1, ()) if not found.get(name)]
    return {
        "microsoft": level,
        "microsoft_name": MICROSOFT_NAMES[level],
        "google": GOOGLE[level],
        "google_name": GOOGLE_NAMES[GOOGLE[level]],
        "missing": missing,
        "next": [_next(name) for name in missing],
    }


def llmops(found: dict[str, list]) -> dict[str, Any]:
    applicable = bool(found.get("llm"))
    dimensions = {}
    for name, (first, second, manual) in DIMENSIONS.items():
        if not applicable or (name == "rag_pipeline" and not found.get("retrieval")):
            dimensions[name] = {"level": None, "why": "no retrieval" if applicable else "no language model"}
            continue
        level, capped = 0, found.get(CAPS.get(name, ""))
        if all(found.get(e) for e in first) and not capped:
            level = 1
            if all(found.get(e) for e in second):
                level = 2
        wanted = (first if level == 0 else second) if level < 2 else ()
        missing = [e for e in wanted if not found.get(e) or capped]
        cited = [h.cite() for e in (*first, *second) if level and found.get(e) for h in found[e][:2]]
        if level == 0 and manual and found.get(manual):
            cited = [h.cite() for h in found[manual][:2]]
        dimensions[name] = {
            "level": level,
            "level_name": LEVEL_NAMES[level],
            "evidence": cited,
            "missing": missing,
            "next": [_next(e) for e in missing],
        }
    return {"applicable": applicable, "dimensions": dimensions}


def _next(name: str) -> str:
    what, where = NEXT[name]
    return f"{what} (this template: {where})"


def drops(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Where ``now`` is below ``before``, a line each (the MLOps level, any LLMOps dimension)."""
    lines = []
    was, is_ = before["mlops"]["microsoft"], now["mlops"]["microsoft"]
    if is_ < was:
        lines.append(
            f"MLOps level {was} -> {is_} (Microsoft's scale): {', '.join(now['mlops']['missing'])} missing"
        )
    for name, then in before["llmops"]["dimensions"].items():
        current = now["llmops"]["dimensions"].get(name, {}).get("level")
        if then.get("level") is not None and (current is None or current < then["level"]):
            lines.append(f"{name} {then['level']} -> {current}")
    return lines

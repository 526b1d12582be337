"""Evaluate: retrieval on held-out pairs against ``business/kpis.yaml``, tracked in MLflow.

For each held-out pair (``paths.eval_pairs``) the instruction is the query: ``hit_at_k`` is the
share of queries with a chunk of the pair's ``source`` document among the ``retrieval.top_k`` best,
``mrr`` the mean of 1/rank of the first such chunk (0 when none). The run records the prompt
versions in use (``prompt.<name>``: their ``prompts:/`` URIs). Every threshold of
``business/kpis.yaml`` is checked by the shared gate engine (``gates.py``); the metrics and the
gate go to ``paths.metrics`` and ``paths.gate`` and to an MLflow run, and a missed threshold fails
the stage with one line per miss.
"""

from __future__ import annotations

from typing import Any

from .. import gates, reports
from ..config import load_kpis, load_params, path, project_root
from ..errors import GateError

METRICS = ("hit_at_k", "mrr")


def retrieval_metrics(retriever, pairs: list[dict[str, Any]], k: int) -> dict[str, float]:
    results = retriever.search([p["instruction"] for p in pairs], k)
    hits, reciprocal = 0, 0.0
    for pair, found in zip(pairs, results, strict=True):
        ranks = [rank for rank, chunk in enumerate(found, start=1) if chunk["document"] == pair["source"]]
        if ranks:
            hits += 1
            reciprocal += 1.0 / ranks[0]
    count = max(len(pairs), 1)
    return {"hit_at_k": round(hits / count, 6), "mrr": round(reciprocal / count, 6)}


def prompt_versions(params: dict[str, Any]) -> dict[str, Any]:
    """The prompt versions the ``prompts`` stage registered (every run records the ones it used)."""
    import json

    file = path(params, "prompts")
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser
    from ..corpus.collect import read_jsonl
    from ..registry import tracking
    from .index import open_index

    parser(__doc__, "evaluate").parse_args(argv)
    params, kpis, root = load_params(), load_kpis(), project_root()
    gates.check_metric_names(kpis, METRICS)
    k = int(params["retrieval"]["top_k"])
    pairs = read_jsonl(path(params, "eval_pairs"))
    metrics = retrieval_metrics(open_index(params), pairs, k)
    checks = [gates.check(name, metrics.get(name), limit) for name, limit in gates.thresholds(kpis).items()]
    passed = all(c["passed"] for c in checks)
    reports.write_json(path(params, "metrics"), metrics)
    reports.publish(path(params, "gate"), {"passed": passed, "checks": checks})
    run = tracking.log_run(
        {
            **tracking.flatten({"retrieval": params["retrieval"], "chunking": params["chunking"]}),
            "model.base": params["model"]["base"],
            "k": k,
            **{f"prompt.{name}": entry["uri"] for name, entry in prompt_versions(params).items()},
        },
        metrics,
        {
            **tracking.lineage_tags(root, path(params, "eval_pairs")),
            "quality_gate": "passed" if passed else "failed",
        },
        params["tracking"],
    )
    if not passed:
        lines = "\n".join(f"  - {gates.failure_line(c)}" for c in checks if not c["passed"])
        raise GateError(
            f"the retrieval gate failed on {len(pairs)} held-out pairs (MLflow run {run['run_id']}):\n{lines}"
        )
    print(f"retrieval gate passed on {len(pairs)} held-out pairs: {metrics} (MLflow run {run['run_id']})")
    return 0

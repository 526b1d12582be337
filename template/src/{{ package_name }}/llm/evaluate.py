"""Evaluate: the application on held-out pairs against ``business/kpis.yaml``, then the registry.

On the held-out pairs (``paths.eval_pairs``), with the instruction as the question:

- retrieval (when the project has it): ``hit_at_k``, the share of questions with a chunk of the
  pair's ``source`` document among the ``retrieval.top_k`` best, and ``mrr``, the mean of 1/rank
  of the first such chunk (0 when none);
- answers (``scores.py``): ``rouge_l`` and ``bleu`` against the reference answers, and
  ``faithfulness``, how much of each answer its context holds;
- ``answer_perplexity`` (local models): how expected the reference answers are after each prompt,
  exp of the mean negative log-likelihood per token (lower is better): what fine-tuning moves first;
- ``judge_correct`` when ``judge.enabled``: the share of answers an LLM judge finds correct
  (``judge.py``);
- with routing on (``chat/routing.py``), the held-out questions routed as the service routes
  them: each cheaper route's answers no worse than the main model's on the questions it takes;
- with fine-tuning, the same scores of the base model (the adapter switched off) as the
  ``baseline``: the primary metric must beat it by ``baseline_margin``.

Every threshold of ``business/kpis.yaml`` is checked by the shared gate engine (``gates.py``).
The metrics, the gate and the answers go to ``paths.metrics``, ``paths.gate`` and
``paths.answers``, and to an MLflow run with the prompt version used (``prompt.<name>``) and the
application as a model (``application.py``). A missed threshold fails the stage with one line per
miss and registers nothing; a pass registers the application as the ``challenger``.
"""

from __future__ import annotations

from typing import Any

from .. import gates, reports
from ..config import load_kpis, load_params, path, project_root

RETRIEVAL = ("hit_at_k", "mrr")
PERPLEXITY = "answer_perplexity"
CACHE = ("cache_hit_rate", "cache_wrong_hits")  # chat/cache.py: the threshold on the held-out pairs
AGAINST = "the base model without the adapter"


def retrieval_metrics(found: list[list[dict[str, Any]]], pairs: list[dict[str, Any]]) -> dict[str, float]:
    """hit@k and MRR of the chunks found for each pair (best first)."""
    hits, reciprocal = 0, 0.0
    for pair, chunks in zip(pairs, found, strict=True):
        ranks = [rank for rank, chunk in enumerate(chunks, start=1) if chunk["document"] == pair["source"]]
        if ranks:
            hits += 1
            reciprocal += 1.0 / ranks[0]
    count = max(len(pairs), 1)
    return {"hit_at_k": round(hits / count, 6), "mrr": round(reciprocal / count, 6)}


def available(params: dict[str, Any]) -> tuple[str, ...]:
    """The metrics this project computes: what ``business/kpis.yaml`` may name."""
    from . import judge, scores

    local = params["model"].get("provider", "local") == "local" or "adapter" in params["paths"]
    judged = (judge.METRIC,) if (params.get("judge") or {}).get("enabled") else ()
    return (
        (RETRIEVAL if params.get("retrieval") else ())
        + scores.METRICS
        + ((PERPLEXITY,) if local else ())
        + judged
        + CACHE
    )


def contexts_of(found, pairs, documents: dict[str, str]) -> list[str]:
    """What each answer is checked against for faithfulness: its retrieved chunks, or without
    retrieval the pair's source document."""
    return [
        "\n".join(c["text"] for c in chunks) if chunks else documents.get(p["source"], "")
        for chunks, p in zip(found, pairs, strict=True)
    ]


def evaluate(params: dict[str, Any], kpis: gates.Kpis, root=None) -> tuple[dict[str, Any], list, Any]:
    """Metrics (with ``baseline`` when there is an adapter), the answers, and the assistant."""
    from ..corpus.collect import read_jsonl
    from . import assistant, scores

    gates.check_metric_names(kpis, available(params))
    pairs = read_jsonl(path(params, "eval_pairs", root))
    if not pairs:
        return documents_only(params, root)
    documents = {d["id"]: d["text"] for d in read_jsonl(path(params, "documents", root))}
    questions = [p["instruction"] for p in pairs]
    references = [p["answer"] for p in pairs]
    app = assistant.from_project(params, root)
    found = app.contexts(questions)
    prompts = app.prompts(questions, found)
    tuned = assistant.adapter_folder(params, root) is not None
    metrics: dict[str, Any] = retrieval_metrics(found, pairs) if app.retriever is not None else {}
    results = []
    contexts = contexts_of(found, pairs, documents)
    for adapter in (True, False) if tuned else (True,):
        answers = app.generate(prompts, adapter=adapter)
        scored = scores.score(answers, references, contexts)
        if hasattr(app.generate, "perplexity"):
            scored[PERPLEXITY] = app.generate.perplexity(prompts, references, adapter=adapter)
        if adapter:
            metrics.update(scored)
            results = [
                {"question": q, "answer": a, "reference": r, "context": c}
                for q, a, r, c in zip(questions, answers, references, found, strict=True)
            ]
        else:
            metrics["baseline"] = scored
            for result, answer in zip(results, answers, strict=True):
                result["base_answer"] = answer
    if (params.get("judge") or {}).get("enabled"):
        from . import judge

        metrics[judge.METRIC] = judge.score(results, params["judge"])
    from ..chat.cache import held_out_check  # the cache's threshold on the same held-out questions

    train = read_jsonl(path(params, "train_pairs", root))
    metrics.update(held_out_check(params, train, pairs, app.retriever, root))
    from ..chat import routing  # the router's routes on the same held-out questions

    router = routing.load(params)
    if router is not None:
        routing.check_names(kpis)
        routed_metrics, routed = routing.held_out_check(router, results, references)
        metrics.update(routed_metrics)
        for name, (indexes, answers) in routed.items():
            for index, answer in zip(indexes, answers, strict=True):
                results[index].update(route=name, route_answer=answer)
    return metrics, results, app


ANSWERS_SHOWN = 5  # documents only: the answers written to paths.answers, for a person to read


def documents_only(params: dict[str, Any], root=None) -> tuple[dict[str, Any], list, Any]:
    """No instruction/answer pairs: retrieval on questions drafted from the documents' headings
    (``corpus/questions.py``), and the application's answers to a few of them, unscored."""
    from ..corpus.questions import project_questions
    from . import assistant

    questions, _ = project_questions(params, root)
    asked = [q["instruction"] for q in questions]
    app = assistant.from_project(params, root)
    found = app.contexts(asked)
    metrics: dict[str, Any] = retrieval_metrics(found, questions) if app.retriever is not None else {}
    metrics["drafted_questions"] = len(asked)
    shown = app.generate(app.prompts(asked[:ANSWERS_SHOWN], found[:ANSWERS_SHOWN])) if asked else []
    results = [
        {"question": q, "answer": a, "reference": None, "context": c}
        for q, a, c in zip(asked, shown, found, strict=False)
    ]
    return metrics, results, app


def skipped_metrics(params: dict[str, Any], metrics: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The metrics a documents-only evaluation could not compute, with why and what the primary
    metric becomes."""
    from ..corpus.questions import HOW_TO_ADD

    if "drafted_questions" not in metrics:
        return {}
    instead = "mrr" if "mrr" in metrics else None
    reason = f"no held-out instruction/answer pairs: {HOW_TO_ADD}"
    return {
        name: {"reason": reason, **({"instead": instead} if instead else {})}
        for name in available(params)
        if name not in metrics
    }


def _asked(results) -> tuple[list[str], list]:
    return [r["question"] for r in results], [r["context"] for r in results]


def speed(generate, prompts: list[str], count: int = 3) -> dict[str, float]:
    """The generator alone, streaming ``count`` prompts one after the other: the slowest time to the
    first piece (ms) and the median output tokens per second (first piece to last)."""
    import statistics
    import time

    firsts, rates = [], []
    for prompt in prompts[:count]:
        usage: dict[str, int] = {}
        start, times = time.perf_counter(), []
        for _ in generate.stream(prompt, usage=usage):
            times.append(time.perf_counter())
        if times:
            firsts.append((times[0] - start) * 1000)
            tokens = usage.get("tokens") or len(times)
            if tokens > 1 and times[-1] > times[0]:
                rates.append(tokens / (times[-1] - times[0]))
    return {
        "ttft_ms": round(max(firsts), 1) if firsts else 0.0,
        "tokens_per_s": round(statistics.median(rates), 1) if rates else 0.0,
    }


HEADROOM = 4  # the first run's limits: this many times the measurement, per concurrent request
ANSWER_MARGIN = 0.9  # an answer threshold measured on the first run: 90 % of the base model's score


def first_run_limits(
    params: dict[str, Any], metrics: dict[str, Any], app, prompts: list[str], root
) -> list[str]:
    """Fill the placeholders of ``business/kpis.yaml`` marked ``measured on the first run``: make
    qa's service limits from the generator's speed on this machine (time to first token and tokens/s,
    with headroom for ``loadtest.concurrency``) and answer thresholds from the base model's scores.
    Returns what was written, one line each."""
    from .. import firstrun
    from ..config import KPIS_FILE

    file = root / KPIS_FILE
    wanted = firstrun.keys(file.read_text(encoding="utf-8"), firstrun.MEASURED) if file.is_file() else []
    if not wanted:
        return []
    lines: dict[str, list[str]] = {}
    base = metrics.get("baseline") or metrics
    for name in wanted:
        if isinstance(base.get(name), int | float):
            floor = round(base[name] * ANSWER_MARGIN, 4)
            lines[name] = [
                f"{name}: "
                + "{min: "
                + f"{floor}"
                + "}"
                + f"   # {firstrun.MEASURED}: the base model {base[name]}, less 10 %"
            ]
    if {"ttft_p95_ms", "tokens_per_s"} & set(wanted) and hasattr(app.generate, "stream"):
        measured = speed(app.generate, prompts)
        load = int((params.get("loadtest") or {}).get("concurrency", 4))
        how = f"   # {firstrun.MEASURED}: {{}} alone, x{HEADROOM * load} for {load} concurrent requests"
        ttft = max(1000.0, round(measured["ttft_ms"] * HEADROOM * load, -1))
        lines["ttft_p95_ms"] = [
            "ttft_p95_ms: {max: " + f"{ttft:g}" + "}" + how.format(f"{measured['ttft_ms']:g} ms")
        ]
        if measured["tokens_per_s"]:
            rate = round(measured["tokens_per_s"] / (HEADROOM * load), 2)
            lines["tokens_per_s"] = [
                "tokens_per_s: {min: " + f"{rate:g}" + "}" + how.format(f"{measured['tokens_per_s']:g}/s")
            ]
    filled = firstrun.fill_file(file, firstrun.MEASURED, lines)
    return [lines[key][0].split("   #")[0] for key in filled]


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser
    from ..corpus.collect import write_jsonl
    from ..registry import tracking
    from . import application

    parser(__doc__, "evaluate").parse_args(argv)
    params, kpis, root = load_params(), load_kpis(), project_root()
    metrics, results, app = evaluate(params, kpis, root)
    written = []  # tiny is random: what it reaches says nothing of the model the project will use
    if params["model"]["base"] != "tiny":
        written = first_run_limits(params, metrics, app, app.prompts(*_asked(results[:3])), root)
    if written:
        kpis = load_kpis()
        print(
            f"measured on the first run -> business/kpis.yaml: {'; '.join(written)} (review and commit them)"
        )
    skipped = skipped_metrics(params, metrics)
    if skipped:
        from ..corpus.questions import HOW_TO_ADD
        from ..errors import QualityGateError

        if "mrr" not in metrics:
            raise QualityGateError(f"nothing to evaluate: no held-out pairs and no retrieval; {HOW_TO_ADD}")
        print(
            f"evaluate: retrieval on {metrics['drafted_questions']} questions drafted from the documents' "
            f"headings; skipped {', '.join(skipped)} (no held-out pairs): {HOW_TO_ADD}"
        )
        kpis = kpis.without(list(skipped), "mrr")
    from ..chat import routing

    routes = routing.gate_checks(metrics, kpis) if routing.load(params) is not None and results else []
    gate = {**gates.gate(metrics, kpis, AGAINST, more=routes), **({"skipped": skipped} if skipped else {})}
    reports.write_json(path(params, "metrics"), metrics)
    reports.publish(path(params, "gate"), gate)
    write_jsonl(
        path(params, "answers"),
        [{**r, "context": [c["id"] for c in r["context"]]} for r in results],
    )
    from .prompts import versions as prompt_versions

    prompts = prompt_versions(params)
    flat = {k: v for k, v in metrics.items() if k != "baseline"}
    run = tracking.log_run(
        {
            **tracking.flatten({k: params[k] for k in ("model", "generation", "chunking") if k in params}),
            **tracking.flatten({"retrieval": params.get("retrieval") or {}}),
            **{f"prompt.{name}": entry["uri"] for name, entry in prompts.items()},
        },
        {**flat, **{f"base_{k}": v for k, v in (metrics.get("baseline") or {}).items()}},
        {
            **tracking.lineage_tags(root, path(params, "eval_pairs")),
            "quality_gate": "passed" if gate["passed"] else "failed",
        },
        params["tracking"],
        log_model=application.logger(params, app.template, prompts.get("answer", {}), root),
    )
    version = tracking.register_if_passed(
        gate, run, flat, params["tracking"], f"the application falls short on {len(results)} held-out pairs"
    )
    print(
        f"quality gate passed on {len(results)} held-out pairs: {flat}; "
        f"registered {params['tracking']['model_name']} v{version} as challenger"
    )
    return 0

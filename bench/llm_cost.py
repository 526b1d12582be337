"""What the semantic cache, model routing and the audit trail cost a chat request, beside the service without them.

    uv run --extra cpu python /path/to/template/bench/llm_cost.py [--requests N] [--out FILE]

Run in a generated llmops project that ran its pipeline (``make repro``), with every part's rails
as configured. Five services are built from the project, in one process: the cache off and the
audit trail off (the floor), the trail on, the cache on with questions it has not seen (misses),
the cache on with questions it has (hits), and the cache and routing on with questions the cache
has not seen (the router answers the easy ones from the documents, the model the rest). Each answers the route's handler directly (no
HTTP: the same for all four), ``--requests`` times, interleaved in rounds so machine noise hits
them alike; every request asks ``max_tokens`` 8 of a question drawn from the held-out pairs with a
request number appended (misses) or as it was put in the cache (hits: entries stored as a kept
answer is). Reported: median and p90 ms per request for each, and, timed inside those requests,
the cache's lookup on a miss (among one entry per held-out question), the router's decision and
the audit line's append: generation's own spread
(milliseconds on ``tiny``) hides differences of a tenth of a millisecond between whole requests.
Targets (issue 27): the cache and the router add at most 1 ms to a miss, a hit answers in at most
5 ms, the trail adds at most 0.3 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--requests", type=int, default=200)
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--out", type=Path)
    args = options.parse_args()
    root = Path.cwd()
    sys.path.insert(0, str(root / "src"))
    package = next(p.name for p in (root / "src").iterdir() if (p / "__main__.py").exists())
    os.environ["PROJECT_ROOT"] = str(root)
    scratch = Path(tempfile.mkdtemp(prefix="bench-llm-cost-"))
    os.environ["PREDICTION_LOG_DIR"] = str(scratch / "requests")
    import importlib

    config = importlib.import_module(f"{package}.config")
    app_module = importlib.import_module(f"{package}.chat.app")
    collect = importlib.import_module(f"{package}.corpus.collect")
    params = config.load_params(root)
    questions = [p["instruction"] for p in collect.read_jsonl(root / params["paths"]["eval_pairs"])]
    questions = questions or ["How do I unlock a bike?"]

    def service(cache: bool, trail: bool, folder: str, routing: bool = False):
        settings = {**params, "cache": {**params.get("cache", {}), "enabled": cache}}
        settings["routing"] = {**params.get("routing", {}), "enabled": routing}
        os.environ["AUDIT_DIR"] = str(scratch / folder)
        app = app_module.create_app(params=settings, root=root)
        chat = app.state.service
        if not trail:
            chat.trail = None
        return chat

    def body(question: str) -> bytes:
        return json.dumps(
            {"model": params["tracking"]["model_name"], "messages": [{"role": "user", "content": question}], "max_tokens": 8}
        ).encode()

    services = {
        "floor (no cache, no trail)": service(False, False, "a"),
        "audit trail on": service(False, True, "b"),
        "cache on, misses": service(True, False, "c"),
        "cache on, hits": service(True, False, "d"),
        "cache and routing on, misses": service(True, False, "e", routing=True),
    }
    cache_module = importlib.import_module(f"{package}.chat.cache")
    for name in ("cache on, hits", "cache on, misses", "cache and routing on, misses"):
        chat = services[name]
        for question in questions:  # what a hit finds (tiny's answers are flagged ungrounded, and a
            # flagged answer is never kept: the entries are put in as a kept answer would be)
            entry = cache_module.Entry(question, "Open the app and scan the bike's code.", [], 1e-6, "warm")
            chat.cache.store(f"{chat.experiment.champion.name}|8", entry)
    spent: dict[str, list[float]] = {"cache lookup (misses)": [], "audit line": [], "routing decision": []}

    def timed(owner, attribute: str, into: list[float]) -> None:
        inner = getattr(owner, attribute)

        def measured(*arguments, **keywords):
            start = time.perf_counter()
            try:
                return inner(*arguments, **keywords)
            finally:
                into.append((time.perf_counter() - start) * 1000)

        object.__setattr__(owner, attribute, measured)  # the router is a frozen dataclass

    misses = services["cache on, misses"].cache
    timed(misses, "lookup", spent["cache lookup (misses)"])
    timed(services["audit trail on"].trail, "append", spent["audit line"])
    routed = services["cache and routing on, misses"]
    timed(routed.router, "route", spent["routing decision"])
    times: dict[str, list[float]] = {name: [] for name in services}
    per_round = max(1, args.requests // args.rounds)
    for round_number in range(args.rounds):
        for name, chat in services.items():
            for i in range(per_round):
                number = round_number * per_round + i
                question = questions[number % len(questions)]
                if name != "cache on, hits":
                    question = f"{question} (request {number})"  # never seen: a miss
                start = time.perf_counter()
                chat.handle(body(question), None)
                times[name].append((time.perf_counter() - start) * 1000)
    summary = {
        name: {"median_ms": round(statistics.median(v), 3), "p90_ms": round(sorted(v)[int(0.9 * len(v))], 3), "n": len(v)}
        for name, v in times.items()
    }
    floor = summary["floor (no cache, no trail)"]["median_ms"]
    parts = {
        "cache lookup per miss": {
            "median_ms": round(statistics.median(spent["cache lookup (misses)"]), 4),
            "n": len(spent["cache lookup (misses)"]),
        },
        "audit line per request": {"median_ms": round(statistics.median(spent["audit line"]), 4), "n": len(spent["audit line"])},
        "routing decision per request": {
            "median_ms": round(statistics.median(spent["routing decision"]), 4),
            "n": len(spent["routing decision"]),
        },
    }
    log = importlib.import_module(f"{package}.serving.log")
    routes = [r["route"] for r in log.read_records(scratch / "requests")[0] if r.get("route")]
    result = {
        "requests": summary,
        "parts": parts,
        "miss_over_floor_ms": round(summary["cache on, misses"]["median_ms"] - floor, 3),
        "trail_over_floor_ms": round(summary["audit trail on"]["median_ms"] - floor, 3),
        "hit_ms": summary["cache on, hits"]["median_ms"],
        "cache_and_router_per_miss_ms": round(
            parts["cache lookup per miss"]["median_ms"] + parts["routing decision per request"]["median_ms"], 4
        ),
        "routed_to_the_documents": f"{routes.count('extractive')} of {len(routes)}",
        "base_model": params["model"]["base"],
    }
    print("| service | median ms | p90 ms | n |\n|---|---:|---:|---:|")
    for name, row in summary.items():
        print(f"| {name} | {row['median_ms']} | {row['p90_ms']} | {row['n']} |")
    for name, row in parts.items():
        print(f"| {name} (timed inside the request) | {row['median_ms']} | | {row['n']} |")
    print(
        f"\nmiss - floor: {result['miss_over_floor_ms']} ms, the cache's and the router's own work "
        f"{result['cache_and_router_per_miss_ms']} ms (target <= 1); hit: {result['hit_ms']} ms "
        f"(target <= 5); trail - floor: {result['trail_over_floor_ms']} ms, the audit line itself "
        f"{parts['audit line per request']['median_ms']} ms (target <= 0.3); routing answered "
        f"{result['routed_to_the_documents']} misses from the documents"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Deployment QA: load-test a running service with held-out rows.

Sends ``loadtest.requests`` POST /predict requests (one held-out row each, target column dropped)
from ``loadtest.concurrency`` threads, each on its own keep-alive connection, and measures latency
percentiles (p50/p95/p99), the error rate (anything but a 2xx answer, or no answer) and throughput.
The p99 latency and the error rate are checked against ``service`` in ``business/kpis.yaml``.
"""

from __future__ import annotations

import json
from typing import Any

from ..config import load_kpis, load_params, path
from ..gates import Kpis
from ..serving import loadtest as engine
from ..serving.loadtest import Client, percentile  # noqa: F401  (QA and the tests use them from here)


def held_out_rows(params: dict[str, Any], limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of the held-out file (``paths.test``) as JSON-ready dicts, without the target column."""
    from ..data.table import read_table

    frame = read_table(path(params, "test"), nrows=limit)
    frame = frame.drop(columns=[params["data"]["target"]], errors="ignore")
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def row_requests(rows: list[dict[str, Any]]) -> list[bytes]:
    """The tabular service's request generator: one held-out row per POST /predict body."""
    return [json.dumps({"instances": [row]}).encode() for row in rows]


def run_load(
    url: str, payloads: list[dict[str, Any]] | list[bytes], requests: int, concurrency: int, **options
) -> dict[str, Any]:
    """The shared load test (``serving/loadtest.py``) with held-out rows (or ready bodies)."""
    bodies = payloads if payloads and isinstance(payloads[0], bytes) else row_requests(payloads)
    if not bodies:
        raise ValueError("no requests to send: the held-out file is empty")
    return engine.run_load(url, bodies, requests, concurrency, **options)


def check(result: dict[str, Any], kpis: Kpis) -> list[dict[str, Any]]:
    """The load test against ``service`` in business/kpis.yaml (p99 latency, error rate); a limit
    on anything else is an error naming the key."""
    from .. import gates

    limits = kpis.service
    observed = {"p99_latency_ms": result["latency_ms"]["p99"], "error_rate": result["error_rate"]}
    unknown = [name for name in limits if name not in observed]
    if unknown:
        raise gates.SettingsError(
            f"{gates.KPIS}: service.{unknown[0]}: the load test measures only {', '.join(observed)}"
        )
    return [gates.check(name, observed[name], limit) for name, limit in limits.items()]


def limit_text(check: dict[str, Any]) -> str:
    return f"max {check['max']}" if "max" in check else f"min {check['min']}"


def load_test(
    url: str,
    payloads: list[dict[str, Any]] | list[bytes],
    kpis: Kpis,
    requests: int = 400,
    concurrency: int = 4,
    route: str = "/predict",
) -> dict[str, Any]:
    """Run the load test and judge it against ``service`` in business/kpis.yaml: the measurements
    plus ``checks`` and ``passed``."""
    result = run_load(url, payloads, requests, concurrency, route=route)
    result["checks"] = check(result, kpis)
    result["passed"] = all(c["passed"] for c in result["checks"])
    return result


def describe(result: dict[str, Any]) -> str:
    latency = result["latency_ms"]
    return (
        f"{result['requests']} requests at concurrency {result['concurrency']}: "
        f"p50 {latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms, "
        f"{result['requests_per_s']} req/s, error rate {result['error_rate']:.2%}"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m <package>.deployment.loadtest --url URL``: the load test alone."""
    from ..cli import parser
    from ..errors import GateError

    params = load_params()
    settings = params.get("loadtest") or {}
    options = parser(__doc__, "loadtest")
    options.add_argument("--url", default=f"http://127.0.0.1:{params['serving']['port']}")
    options.add_argument("--requests", type=int, default=int(settings.get("requests", 400)))
    options.add_argument("--concurrency", type=int, default=int(settings.get("concurrency", 4)))
    args = options.parse_args(argv)
    result = load_test(args.url, held_out_rows(params), load_kpis(), args.requests, args.concurrency)
    print(json.dumps(result, indent=2))
    print(describe(result))
    failed = [c for c in result["checks"] if not c["passed"]]
    if failed:
        raise GateError("; ".join(f"{c['metric']} = {c['value']} misses {limit_text(c)}" for c in failed))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())

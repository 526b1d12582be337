"""Deployment QA: load-test a running service with held-out rows.

Sends ``loadtest.requests`` POST /predict requests (one held-out row each, target column dropped)
from ``loadtest.concurrency`` threads, each on its own keep-alive connection, and measures latency
percentiles (p50/p95/p99), the error rate (anything but a 2xx answer, or no answer) and throughput.
The p99 latency and the error rate are checked against ``service`` in ``business/kpis.yaml``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from ..config import load_kpis, load_params, path
from .sink import QA_TRAFFIC, TRAFFIC_HEADER

TIMEOUT_S = 10.0


def held_out_rows(params: dict[str, Any], limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of the held-out file (``paths.test``) as JSON-ready dicts, without the target column."""
    import pandas as pd

    frame = pd.read_csv(path(params, "test"), nrows=limit)
    frame = frame.drop(columns=[params["data"]["target"]], errors="ignore")
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


class Client:
    """One keep-alive HTTP connection to the service (reconnects after an error)."""

    def __init__(self, url: str, timeout: float = TIMEOUT_S):
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.prefix = parts.path.rstrip("/")
        self.kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.address = (parts.hostname, parts.port, timeout)
        self.connection = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        host, port, timeout = self.address
        return self.kind(host, port, timeout=timeout)

    def request(
        self, method: str, route: str, body: bytes | None = None, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        """``(status, body)`` of one request; raises OSError/HTTPException when there is no answer."""
        headers = {TRAFFIC_HEADER: QA_TRAFFIC}  # not production traffic: monitoring leaves it out
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            self.connection.request(method, self.prefix + route, body=body, headers=headers)
            response = self.connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            self.connection = self._connect()
            raise

    def post_json(self, route: str, payload: Any) -> tuple[int, bytes]:
        return self.request("POST", route, json.dumps(payload).encode())

    def close(self) -> None:
        self.connection.close()


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0-100) of ``values``."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def row_requests(rows: list[dict[str, Any]]) -> list[bytes]:
    """The tabular service's request generator: one held-out row per POST /predict body."""
    return [json.dumps({"instances": [row]}).encode() for row in rows]


def run_load(
    url: str,
    payloads: list[dict[str, Any]] | list[bytes],
    requests: int,
    concurrency: int,
    warmup: int = 1,
    route: str = "/predict",
) -> dict[str, Any]:
    """POST ``requests`` bodies to ``route`` from ``concurrency`` threads; raw measurements.

    ``payloads``: request bodies (bytes, sent in turn), or rows for ``row_requests``. Any service
    plugs in its route and its own generator of bodies. Each thread first sends ``warmup``
    unmeasured requests (so connection set-up and a lazily loaded model do not count), then takes
    request numbers from a shared counter until all are sent.
    """
    if not payloads:
        raise ValueError("no requests to send: the held-out file is empty")
    if requests < 1 or concurrency < 1:
        raise ValueError("loadtest.requests and loadtest.concurrency must be at least 1")
    concurrency = min(concurrency, requests)
    # encoded before timing
    bodies = list(payloads) if isinstance(payloads[0], bytes) else row_requests(payloads)
    latencies: list[float] = []
    failures: dict[str, int] = {}
    lock = threading.Lock()
    counter = iter(range(requests))
    ready = threading.Barrier(concurrency + 1)

    def worker(client: Client) -> None:
        try:
            try:
                for _ in range(warmup):
                    with contextlib.suppress(OSError, http.client.HTTPException):
                        client.request("POST", route, bodies[0])
            finally:
                ready.wait()  # whatever happened, never leave the others waiting
            while True:
                with lock:
                    number = next(counter, None)
                if number is None:
                    return
                body = bodies[number % len(bodies)]
                start = time.perf_counter()
                try:
                    status, _ = client.request("POST", route, body)
                    failure = None if 200 <= status < 300 else f"HTTP {status}"
                except (OSError, http.client.HTTPException) as error:
                    failure = type(error).__name__
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    latencies.append(elapsed)
                    if failure:
                        failures[failure] = failures.get(failure, 0) + 1
        finally:
            client.close()

    clients = [Client(url) for _ in range(concurrency)]  # a bad URL fails here, before any thread
    threads = [threading.Thread(target=worker, args=(client,), daemon=True) for client in clients]
    for thread in threads:
        thread.start()
    ready.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if not latencies:
        raise RuntimeError(f"the load test against {url} sent no request")
    errors = sum(failures.values())
    return {
        "url": url,
        "requests": len(latencies),
        "concurrency": concurrency,
        "duration_s": round(wall, 3),
        "requests_per_s": round(len(latencies) / wall, 1) if wall > 0 else None,
        "latency_ms": {
            name: round(percentile(latencies, q), 2)
            for name, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))
        },
        "errors": errors,
        "error_rate": round(errors / len(latencies), 4),
        "failures": failures,
    }


def check(result: dict[str, Any], kpis: dict[str, Any]) -> list[dict[str, Any]]:
    """The load test against ``service`` in business/kpis.yaml (p99 latency, error rate); a limit
    on anything else is an error naming the key."""
    from .. import gates

    limits = gates.bounds(kpis.get("service"), f"{gates.KPIS}: service")
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
    kpis: dict[str, Any],
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

"""A load test any service plugs into: its route and its request bodies, from several threads.

``run_load`` POSTs the bodies from ``concurrency`` threads, each on its own keep-alive connection
(``Client``), and measures latency percentiles, the error rate (anything but a 2xx answer, or no
answer) and throughput; a ``read`` function may take its own measurements from each answer as it
arrives (the chat service's time to first token and tokens). Requests carry ``X-Traffic: qa``, so
monitoring leaves them out.
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

from .log import QA_TRAFFIC, TRAFFIC_HEADER

TIMEOUT_S = 10.0


# What a connection the server closed while it sat idle (its keep-alive timeout: 5 s in uvicorn)
# raises on the next request: sent again once, on a new connection.
STALE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, http.client.RemoteDisconnected)


class Client:
    """One keep-alive HTTP connection to the service (reconnects after an error; a request on a
    connection the server closed while it was idle is sent again once on a new one)."""

    def __init__(self, url: str, timeout: float = TIMEOUT_S):
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.prefix = parts.path.rstrip("/")
        self.kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.address = (parts.hostname, parts.port, timeout)
        self.connection = self._connect()
        self.used = False  # a request went through on this connection: it may have gone stale since

    def _connect(self) -> http.client.HTTPConnection:
        host, port, timeout = self.address
        return self.kind(host, port, timeout=timeout)

    def request(
        self,
        method: str,
        route: str,
        body: bytes | None = None,
        content_type: str = "application/json",
        read=None,
    ) -> tuple[int, Any]:
        """``(status, body)`` of one request (``read(response)`` instead of the whole body, when
        given); raises OSError/HTTPException when there is no answer."""
        headers = {TRAFFIC_HEADER: QA_TRAFFIC}  # not production traffic: monitoring leaves it out
        if body is not None:
            headers["Content-Type"] = content_type
        while True:
            try:
                self.connection.request(method, self.prefix + route, body=body, headers=headers)
                response = self.connection.getresponse()
                answer = response.status, (read(response) if read is not None else response.read())
                self.used = True
                return answer
            except (OSError, http.client.HTTPException) as error:
                stale = self.used and isinstance(error, STALE)
                self.close()
                self.connection, self.used = self._connect(), False
                if not stale:
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


def run_load(
    url: str,
    payloads: list[dict[str, Any]] | list[bytes],
    requests: int,
    concurrency: int,
    warmup: int = 1,
    route: str = "/predict",
    read=None,
) -> dict[str, Any]:
    """POST ``requests`` bodies to ``route`` from ``concurrency`` threads; raw measurements.

    ``payloads``: request bodies (bytes, sent in turn), or JSON-ready payloads. Any service plugs
    in its route and its own generator of bodies. Each thread first sends ``warmup`` unmeasured
    requests (so connection set-up and a lazily loaded model do not count), then takes request
    numbers from a shared counter until all are sent. ``read(response, start)``: reads an answer
    and returns its own measurements (``{name: number}``), collected under ``"measures"``.
    """
    if not payloads:
        raise ValueError("no requests to send: the set of request bodies is empty")
    if requests < 1 or concurrency < 1:
        raise ValueError("loadtest.requests and loadtest.concurrency must be at least 1")
    concurrency = min(concurrency, requests)
    # encoded before timing
    bodies = list(payloads) if isinstance(payloads[0], bytes) else [json.dumps(p).encode() for p in payloads]
    latencies: list[float] = []
    measures: dict[str, list[float]] = {}
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
                measured: dict[str, float] = {}
                try:
                    reader = None if read is None else (lambda response, at=start: read(response, at))
                    status, answer = client.request("POST", route, body, read=reader)
                    failure = None if 200 <= status < 300 else f"HTTP {status}"
                    if failure is None and read is not None:
                        measured = answer or {}
                except (OSError, http.client.HTTPException, ValueError) as error:
                    failure = type(error).__name__
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    latencies.append(elapsed)
                    for name, value in measured.items():
                        measures.setdefault(name, []).append(value)
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
        **({"measures": measures} if read is not None else {}),
    }

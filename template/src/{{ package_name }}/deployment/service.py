"""The serving base every profile's service plugs its routes into, so they all behave alike.

- ``GET /health``: ``{"status": "ok", "model": "<where the model came from>"}``;
- ``GET /metrics``: Prometheus text from the service's own registry: requests of the main route by
  HTTP status, their latency (reading the body to the answer) and errors by kind; a route adds its
  own series to ``registry``;
- ``read_body``: the request body, or a 413 answer once it passes ``serving.max_body_bytes``
  (default 1 MiB; a chunked body is counted as it arrives);
- ``answer`` / ``refuse``: JSON answers, counted and timed;
- the prediction log is closed when the app stops.
"""

from __future__ import annotations

import json
import time
from typing import Any

MAX_BODY_BYTES = 1_048_576
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
STATUSES = (200, 413, 422, 500)


class ServiceBase:
    """A FastAPI app with health, metrics, body limit and timing; ``route`` names the main route
    (``predict``: the series are ``predict_requests``, ``predict_latency_seconds``, ``predict_errors``)."""

    def __init__(self, title: str, source: str, log, params: dict[str, Any], route: str = "predict"):
        from contextlib import asynccontextmanager

        from fastapi import FastAPI
        from fastapi.responses import Response
        from prometheus_client import (
            CONTENT_TYPE_LATEST,
            CollectorRegistry,
            Counter,
            Histogram,
            disable_created_metrics,
            generate_latest,
        )

        disable_created_metrics()  # no *_created series: the process start time says as much
        self.registry = registry = CollectorRegistry()
        requests = Counter(
            f"{route}_requests", f"/{route} requests by HTTP status", ["status"], registry=registry
        )
        self._latency = Histogram(
            f"{route}_latency_seconds",
            f"Time to answer /{route}, reading the body to the answer",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            f"{route}_errors",
            "Refused (invalid_request, too_large) or failed (model) requests",
            ["kind"],
            registry=registry,
        )
        self._by_status = {status: requests.labels(str(status)) for status in STATUSES}
        self._response = Response
        self.max_body = int((params.get("serving") or {}).get("max_body_bytes", MAX_BODY_BYTES))
        self._too_large = (
            f"the body is larger than {self.max_body} bytes (serving.max_body_bytes): send less per request"
        )

        @asynccontextmanager
        async def lifespan(_app):
            yield
            log.close()

        self.app = app = FastAPI(title=title, lifespan=lifespan)

        @app.get("/health")
        async def health() -> dict[str, str]:
            return {"status": "ok", "model": source}

        @app.get("/metrics")
        async def prometheus() -> Response:
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def answer(self, status: int, payload: dict[str, Any], start: float):
        """A JSON answer, counted by status and timed from ``start`` (``time.perf_counter()``)."""
        counter = self._by_status.get(status)
        if counter is not None:
            counter.inc()
        self._latency.observe(time.perf_counter() - start)
        return self._response(json.dumps(payload), status_code=status, media_type="application/json")

    def refuse(self, kind: str, status: int, detail: str, start: float):
        self.errors.labels(kind).inc()
        return self.answer(status, {"detail": detail}, start)

    async def read_body(self, request, start: float):
        """``(body, None)``, or ``(None, a 413 answer)`` when the body passes the limit."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            return None, self.refuse("too_large", 413, self._too_large, start)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_body:
                return None, self.refuse("too_large", 413, self._too_large, start)
        return bytes(body), None

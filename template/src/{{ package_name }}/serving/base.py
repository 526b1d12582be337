"""The serving base every profile's service plugs its routes into, so they all behave alike.

- ``GET /health``: ``{"status": "ok", "model": "<where the model came from>"}``;
- ``GET /metrics``: Prometheus text from the service's own registry: requests of the main route by
  HTTP status, their latency (reading the body to the answer) and errors by kind; a route adds its
  own series to ``registry``;
- ``post(path, handle, schema)``: a JSON POST route. ``handle(body, traffic)`` gets the raw body
  (refused with 413 past ``serving.max_body_bytes``, default 1 MiB, a chunked body counted as it
  arrives) and the ``X-Traffic`` header, and returns the answer's payload, or a ``Stream`` of
  server-sent events, or raises ``Refused`` (a 4xx with a message); any other exception is a 500
  that names it. Answers are counted and timed. ``threaded=True`` runs a slow handler (and its
  stream) in a worker thread, so health and metrics answer meanwhile; ``error`` shapes the body of
  a refusal (default ``{"detail": ...}``), an unknown path's (404) and a wrong method's (405) too;
- the request log is closed when the app stops.

Speed: a POST route is answered straight from the ASGI call (orjson in, orjson out), before
FastAPI's routing and middleware, which cost more than the model's own work on a small model; the
route is still declared to FastAPI, so ``/docs`` shows its schema and it behaves the same there.
"""

import contextvars
import itertools
import logging
import os
import time
from typing import Any

from .log import TRAFFIC_HEADER

MAX_BODY_BYTES = 1_048_576
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
STATUSES = (200, 400, 404, 413, 422, 500)
EVENT_STREAM = "text/event-stream"
logger = logging.getLogger(__name__)
_TRAFFIC = TRAFFIC_HEADER.lower().encode()  # ASGI header names are lower-case bytes
REQUEST_ID_HEADER = "x-request-id"  # where OpenAI's clients read a request's id (errors included)
_REQUEST_ID_BYTES = REQUEST_ID_HEADER.encode()
_REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def new_request_id() -> str:
    """32 hex digits: this process's random prefix and a counter. Unique without a system call per
    request, as ``uuid4`` makes (a child process draws its own prefix); not a secret."""
    return f"{_ID_PREFIX[0]}{next(_ID_COUNTER):016x}"


_ID_PREFIX, _ID_COUNTER = [os.urandom(8).hex()], itertools.count()
os.register_at_fork(after_in_child=lambda: _ID_PREFIX.__setitem__(0, os.urandom(8).hex()))


def request_id() -> str:
    """The id of the request being answered (a route's handler may log it): the service sends it
    back in the ``x-request-id`` header of every answer, a refusal's too."""
    return _REQUEST_ID.get() or new_request_id()


class Refused(Exception):
    """A request the route will not answer: ``kind`` (the errors series' label), HTTP ``status``, why."""

    def __init__(self, kind: str, status: int, detail: str):
        super().__init__(detail)
        self.kind, self.status, self.detail = kind, status, detail


class Stream:
    """A streamed answer: ``events`` yields JSON-ready payloads, each sent as one server-sent event
    (``data: <json>``), then ``data: [DONE]``. An exception while streaming ends the stream with an
    ``error`` event (the status line is already sent); ``on_error`` shapes it."""

    def __init__(self, events, on_error=None):
        self.events, self.on_error = iter(events), on_error


def _plain_error(kind: str, status: int, detail: str, param: str | None = None) -> dict[str, Any]:
    return {"detail": detail}


class ServiceBase:
    """A FastAPI app with health, metrics, body limit and timing; ``route`` names the main route
    (``predict``: the series are ``predict_requests``, ``predict_latency_seconds``, ``predict_errors``)."""

    def __init__(
        self, title: str, source: str, log, params: dict[str, Any], route: str = "predict", error=None
    ):
        from contextlib import asynccontextmanager

        import orjson
        from fastapi import FastAPI
        from fastapi.responses import Response
        from prometheus_client import (
            CONTENT_TYPE_LATEST,
            CollectorRegistry,
            Counter,
            disable_created_metrics,
            generate_latest,
        )

        from .tally import Tally

        disable_created_metrics()  # no *_created series: the process start time says as much
        self.registry = registry = CollectorRegistry()
        self.tally = tally = Tally(registry)  # the per-request series: summed in batches
        self._requests = tally.counter(
            f"{route}_requests", f"/{route} requests by HTTP status", "status", map(str, STATUSES)
        )
        self._latency = tally.histogram(
            f"{route}_latency_seconds",
            f"Time to answer /{route}, reading the body to the answer",
            buckets=LATENCY_BUCKETS,
        )
        self.errors = Counter(  # refusals and failures: rare, prometheus_client's own counter
            f"{route}_errors",
            "Refused (invalid_request, too_large) or failed (model) requests",
            ["kind"],
            registry=registry,
        )
        self._dumps = orjson.dumps
        self.max_body = int((params.get("serving") or {}).get("max_body_bytes", MAX_BODY_BYTES))
        self._too_large = (
            f"the body is larger than {self.max_body} bytes (serving.max_body_bytes): send less per request"
        )
        self._error = error or _plain_error
        posts: dict[str, Any] = {}
        self._posts = posts
        base = self

        @asynccontextmanager
        async def lifespan(_app):
            yield
            log.close()

        class Service(FastAPI):
            async def __call__(self, scope, receive, send):
                if scope["type"] == "http" and scope["method"] == "POST":
                    handle = posts.get(scope["path"])
                    if handle is not None:
                        return await base._serve(handle, scope, receive, send)
                await super().__call__(scope, receive, send)

        self.app = app = Service(title=title, lifespan=lifespan)

        if error is not None:  # the route's own error shape for unknown paths and wrong methods too
            from fastapi.responses import JSONResponse
            from starlette.exceptions import HTTPException

            @app.exception_handler(HTTPException)
            async def http_error(request, exc: HTTPException) -> Response:
                kinds = {404: "not_found", 405: "method_not_allowed"}
                detail = f"{request.method} {request.url.path}: {exc.detail}"
                body = error(kinds.get(exc.status_code, "http_error"), exc.status_code, detail)
                headers = {**(exc.headers or {}), REQUEST_ID_HEADER: new_request_id()}
                return JSONResponse(body, status_code=exc.status_code, headers=headers)

        @app.get("/health")
        async def health() -> dict[str, str]:
            return {"status": "ok", "model": source}

        @app.get("/metrics")
        async def prometheus() -> Response:
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def post(self, path: str, handle, schema: dict[str, Any], threaded: bool = False) -> None:
        """Plug in a JSON POST route: ``handle(body: bytes, traffic: str | None) -> payload | Stream``."""
        from fastapi import Request
        from fastapi.responses import Response, StreamingResponse

        self._posts[path] = (handle, threaded)
        extra = {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}

        # What /docs shows; requests reach it only when the app is mounted under a prefix.
        @self.app.post(path, openapi_extra=extra)
        async def route(request: Request) -> Response:
            start = time.perf_counter()
            declared = request.headers.get("content-length", "")
            body = None if declared.isdigit() and int(declared) > self.max_body else await request.body()
            traffic = request.headers.get(TRAFFIC_HEADER)
            ident = new_request_id()
            status, payload = await self._answer(handle, threaded, body, traffic, start, ident)
            headers = {REQUEST_ID_HEADER: ident}
            if isinstance(payload, Stream):
                return StreamingResponse(
                    self._events(payload, start), media_type=EVENT_STREAM, headers=headers
                )
            return Response(payload, status_code=status, media_type="application/json", headers=headers)

    async def _answer(self, handle, threaded: bool, body, traffic, start: float, ident: str):
        if not threaded:
            return self._respond(handle, body, traffic, start, ident)
        from anyio import to_thread

        return await to_thread.run_sync(self._respond, handle, body, traffic, start, ident)

    async def _serve(self, route, scope, receive, send) -> None:
        handle, threaded = route
        start = time.perf_counter()
        declared, traffic = b"", None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == _TRAFFIC:
                traffic = value.decode("latin-1")
        body: bytes | None = None
        if not (declared.isdigit() and int(declared) > self.max_body):
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the client gave up before its body ended: nothing is answered or logged
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    break
                chunks.append(chunk)
                if not message.get("more_body"):
                    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    break
        ident = new_request_id()
        if threaded:
            status, payload = await self._answer(handle, threaded, body, traffic, start, ident)
        else:  # no coroutine in between: a row is scored in about a hundred microseconds
            status, payload = self._respond(handle, body, traffic, start, ident)
        tagged = (_REQUEST_ID_BYTES, ident.encode())
        if isinstance(payload, Stream):
            headers = [(b"content-type", EVENT_STREAM.encode()), (b"cache-control", b"no-cache"), tagged]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            async for event in self._events(payload, start, threaded):
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            tagged,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _events(self, stream: Stream, start: float, threaded: bool = True):
        """The stream's server-sent events, each event's work in a worker thread when ``threaded``."""
        from anyio import to_thread

        done = object()
        while True:
            try:
                if threaded:
                    event = await to_thread.run_sync(next, stream.events, done)
                else:
                    event = next(stream.events, done)
            except Exception as error:  # the status line is out: the error goes in the stream
                logger.exception("stream failed")
                self.errors.labels("model").inc()
                detail = f"the model failed: {type(error).__name__}: {error}"
                shaped = (stream.on_error or self._error)("model", 500, detail)
                yield b"data: " + self._dumps(shaped) + b"\n\n"
                break
            if event is done:
                yield b"data: [DONE]\n\n"
                break
            yield b"data: " + self._dumps(event) + b"\n\n"
        self._latency.observe(time.perf_counter() - start)

    def _respond(self, handle, body: bytes | None, traffic: str | None, start: float, ident: str = ""):
        """Run ``handle`` on a body (None: over the limit) and count, time and encode its answer
        (a ``Stream`` is counted now and timed when it ends); ``ident`` is the request's id
        (``request_id()`` while ``handle`` runs)."""
        _REQUEST_ID.set(ident)
        if body is None:
            status, answer = 413, self._error("too_large", 413, self._too_large)
            self.errors.labels("too_large").inc()
        else:
            try:
                status, answer = 200, handle(body, traffic)
            except Refused as refused:
                param = getattr(refused, "param", None)
                status, answer = (
                    refused.status,
                    self._error(refused.kind, refused.status, refused.detail, param),
                )
                self.errors.labels(refused.kind).inc()
            except Exception as error:  # the model itself failed: say so, count it
                logger.exception("request failed")
                detail = f"the model failed: {type(error).__name__}: {error}"
                status, answer = 500, self._error("model", 500, detail)
                self.errors.labels("model").inc()
        self._requests.add(status)
        if isinstance(answer, Stream):
            return status, answer
        payload = self._dumps(answer)
        self._latency.observe(time.perf_counter() - start)
        return status, payload


def serve(doc: str | None, argv: list[str] | None, create_app, describe) -> int:
    """The ``serve`` command of a profile: ``--host``/``--port`` (defaults: ``serving`` in
    params.yaml), ``create_app(params=...)``, one line from ``describe(app, url)``, then uvicorn."""
    from .. import process
    from ..cli import parser
    from ..config import load_params
    from ..errors import GateError

    params = load_params()
    serving = params.get("serving") or {}
    options = parser(doc, "serve")
    options.add_argument(
        "--host", default=str(serving.get("host", "127.0.0.1")), help="default: serving.host"
    )
    options.add_argument(
        "--port", type=int, default=int(serving.get("port", 8000)), help="default: serving.port"
    )
    args = options.parse_args(argv)
    import uvicorn

    try:
        app = create_app(params=params)
    except (FileNotFoundError, ValueError) as error:
        raise GateError(f"cannot serve: {error}") from error
    print(describe(app, f"http://{args.host}:{args.port}"))
    process.freeze()
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info")
    return 0

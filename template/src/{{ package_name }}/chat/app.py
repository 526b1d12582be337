"""Deployment: the application as an OpenAI-compatible chat service (FastAPI on uvicorn).

- ``POST /v1/chat/completions``: OpenAI's chat completions, answered at once or streamed as
  server-sent events (``"stream": true``); any OpenAI client or SDK talks to it (``base_url`` =
  ``http://<host>:<port>/v1``). The last user message is the question: retrieval, the prompt and the
  generator answer it (``backends.py``: the registered application or an upstream server);
- ``GET /v1/models``: the one model it serves (``tracking.model_name``);
- ``GET /health``, ``GET /metrics`` (Prometheus): the serving base's, plus time to first token,
  tokens per second, input and output tokens, cost per request (``business/prices.yaml``),
  guardrail triggers by rule, and the grounding of the answers.

Guardrails (``guardrails/policy.yaml``, when the project has them) screen every question before
retrieval and every answer before it leaves; a blocked request is answered with the policy's
message and ``finish_reason: content_filter``. A malformed request gets an OpenAI-style 4xx, a body
over ``serving.max_body_bytes`` a 413. Every request goes to the request log (redacted question,
answer, sources, rules, tokens, timings, cost): what monitoring reads. ``serving.trace_sample`` of
the requests are traced in MLflow. Host and port: ``serving`` in params.yaml, or ``--host``/``--port``.
"""

from __future__ import annotations

import random
import time
from typing import Any

from ..config import load_params, project_root
from . import protocol

TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RATE_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)
COST_BUCKETS = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1)
SHARE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def cited(contexts) -> dict[str, Any]:
    """The retrieved chunks as a response names them: ``sources`` (chunk ids) and ``citations``
    (each chunk's document, title and URL, as ``collect`` found them)."""
    return {
        "sources": [c["id"] for c in contexts],
        "citations": [
            {
                "id": c["id"],
                "document": c.get("document", ""),
                "title": c.get("title", ""),
                "url": c.get("url", ""),
            }
            for c in contexts
        ],
    }


class Metrics:
    """The chat route's own Prometheus series, in the serving base's registry."""

    def __init__(self, registry):
        from prometheus_client import Counter, Histogram

        self.ttft = Histogram(
            "chat_time_to_first_token_seconds",
            "Request to first answer text",
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.rate = Histogram(
            "chat_tokens_per_second",
            "Generated tokens per second of generation",
            buckets=RATE_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "chat_tokens", "Tokens by kind (input: the prompt)", ["kind"], registry=registry
        )
        self.cost = Counter(
            "chat_cost", "Cost of the answered requests (business/prices.yaml)", registry=registry
        )
        self.cost_per_request = Histogram(
            "chat_cost_per_request", "Cost of one request", buckets=COST_BUCKETS, registry=registry
        )
        self.triggers = Counter(
            "guardrail_triggers", "Guardrail triggers by rule", ["rule"], registry=registry
        )
        self.grounded = Histogram(
            "chat_grounded_share",
            "Share of an answer's words its context holds",
            buckets=SHARE_BUCKETS,
            registry=registry,
        )


class Chat:
    """One chat request, from the screened question to the logged answer."""

    def __init__(self, service, request: protocol.ChatRequest, traffic: str | None):
        self.service, self.request, self.traffic = service, request, traffic
        self.start = time.perf_counter()
        self.ident = protocol.new_id()
        self.rules: list[str] = []
        self.first: float | None = None  # the first answer text out to the client
        self.generated: list[float] = []  # when the model's first and last pieces came
        self.span = service.trace_start(request.question)

    def timed(self, pieces):
        """``pieces`` as they come, noting when the model wrote the first and the last."""
        for piece in pieces:
            now = time.perf_counter()
            self.generated = [self.generated[0] if self.generated else now, now]
            yield piece

    def released(self) -> None:
        """Answer text went out: the first time is the time to first token."""
        if self.first is None:
            self.first = time.perf_counter()

    def tokens_per_second(self, tokens: int) -> float | None:
        """Output tokens over generation time (the model's first piece to its last)."""
        if len(self.generated) < 2 or tokens < 2 or self.generated[1] <= self.generated[0]:
            return None
        return round(tokens / (self.generated[1] - self.generated[0]), 2)

    def screen_question(self):
        rails = self.service.rails
        if rails is None:
            return self.request.question, None
        screened = rails.check_input(self.request.question)
        self.count(screened.triggers)
        return screened.text, screened.blocked

    def count(self, triggers) -> None:
        for trigger in triggers:
            self.service.metrics.triggers.labels(trigger.rule).inc()
            self.rules.append(trigger.rule)

    def finish(self, question: str, answer: str, contexts, prompt_tokens: int, generated: int, blocked=None):
        """Metrics, the request log and the trace of an answered (or blocked) request."""
        service, latency = self.service, time.perf_counter() - self.start
        # a blocked request generated nothing: no tokens, no cost
        answer_tokens = generated or (service.backend.count_tokens(answer) if answer and not blocked else 0)
        spent = service.cost(prompt_tokens, answer_tokens)
        metrics = service.metrics
        metrics.tokens.labels("input").inc(prompt_tokens)
        metrics.tokens.labels("output").inc(answer_tokens)
        metrics.cost.inc(spent)
        metrics.cost_per_request.observe(spent)
        grounded = None
        if contexts and answer and not blocked:
            from ..llm.scores import grounded_share

            grounded = round(grounded_share(answer, "\n\n".join(c["text"] for c in contexts)), 4)
            metrics.grounded.observe(grounded)
        ttft = None if self.first is None else round(self.first - self.start, 4)
        if ttft is not None:
            metrics.ttft.observe(ttft)
        rate = None if blocked else self.tokens_per_second(answer_tokens)
        if rate is not None:
            metrics.rate.observe(rate)
        record = {
            "question": question,
            "answer": answer,
            "sources": [c["id"] for c in contexts],
            "rules": self.rules,
            "blocked": blocked,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": answer_tokens,
            "ttft_s": ttft,
            "tokens_per_s": rate,
            "latency_s": round(latency, 4),
            "cost": spent,
            "grounded": grounded,
        }
        service.log.write_records([record], self.traffic)
        service.trace_end(self.span, record)
        return protocol.usage(prompt_tokens, answer_tokens)


class ChatService:
    def __init__(self, params: dict[str, Any], backend, rails, prices, log):
        self.params, self.backend, self.rails, self.prices, self.log = params, backend, rails, prices, log
        self.name = params["tracking"]["model_name"]
        serving = params.get("serving") or {}
        self.cap = int(params["generation"]["max_new_tokens"])
        self.trace_sample = float(serving.get("trace_sample", 0.0))
        self.metrics: Metrics | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        from .costs import cost

        return cost(self.prices, prompt_tokens, completion_tokens)

    # ------------------------------------------------------------------ tracing (sampled)
    def trace_start(self, question: str):
        if self.trace_sample <= 0 or random.random() >= self.trace_sample:
            return None
        import mlflow

        return mlflow.start_span_no_context("chat", span_type="CHAT_MODEL", inputs={"question": question})

    @staticmethod
    def trace_end(span, record: dict[str, Any]) -> None:
        if span is not None:
            span.set_attributes({k: v for k, v in record.items() if k not in ("question", "answer")})
            span.set_outputs({"answer": record["answer"], "sources": record["sources"]})
            span.end()

    # ------------------------------------------------------------------ the route
    def handle(self, body: bytes, traffic: str | None):
        request = protocol.parse(body, self.name, self.cap)
        chat = Chat(self, request, traffic)
        question, blocked = chat.screen_question()
        if blocked is not None:
            return self._blocked(chat, question, blocked)
        prompt, contexts = self.backend.prompt(question)
        usage: dict[str, int] = {}
        generate = self.backend.generate
        if not request.stream and hasattr(generate, "complete"):  # an upstream server: one response
            pieces = iter([generate.complete(prompt, request.max_tokens, request.temperature, usage)])
        else:
            pieces = generate.stream(prompt, request.max_tokens, request.temperature, usage)
        if request.stream:
            from ..serving.base import Stream

            events = self._events(chat, question, prompt, contexts, pieces, usage)
            return Stream(events, self._stream_error)
        text = ""
        for piece in chat.timed(pieces):
            chat.released()  # the first token, for a client that waits for the whole answer
            text += piece
        answer = text.strip()
        if self.rails is not None:
            screened = self.rails.check_output(answer, "\n\n".join(c["text"] for c in contexts))
            chat.count(screened.triggers)
            answer = screened.text
        used = chat.finish(
            question, answer, contexts, self.prompt_tokens(prompt, usage), usage.get("tokens", 0)
        )
        extra = {**cited(contexts), "guardrails": chat.rules}
        return protocol.completion(chat.ident, self.name, answer, "stop", used, extra)

    def _blocked(self, chat: Chat, question: str, rule: str):
        message = self.rails.blocked_message(rule)
        chat.first = time.perf_counter()
        shown = "" if rule in ("length", "tokens") else question  # a flood is not logged whole
        used = chat.finish(shown, message, [], 0, 0, blocked=rule)
        extra = {**cited([]), "guardrails": chat.rules}
        if not chat.request.stream:
            return protocol.completion(chat.ident, self.name, message, "content_filter", used, extra)
        from ..serving.base import Stream

        events = [
            protocol.chunk(chat.ident, self.name, {"role": "assistant", "content": message}),
            protocol.chunk(chat.ident, self.name, {}, "content_filter", **extra),
        ]
        return Stream(events, self._stream_error)

    def prompt_tokens(self, prompt: str, usage: dict[str, int]) -> int:
        """The prompt's tokens: the upstream server's count (what it bills) when it sent one."""
        return int(usage.get("prompt_tokens") or self.backend.count_tokens(prompt))

    def _events(self, chat: Chat, question: str, prompt: str, contexts, pieces, usage):
        """Chunks of a streamed answer, as the model writes it: with guardrails, through the output
        rails' bounded hold-back (``StreamScreen``), which redacts personal data before it leaves and
        ends the stream on a violation (``content_filter``) or past the length limit (``length``);
        grounding is judged on the whole answer."""
        name, ident, rails = self.name, chat.ident, self.rails
        yield protocol.chunk(ident, name, {"role": "assistant", "content": ""})
        screen = rails.stream() if rails is not None else None
        sent = ""
        for piece in chat.timed(pieces):
            out = screen.feed(piece) if screen is not None else piece
            if out:
                chat.released()
                sent += out
                yield protocol.chunk(ident, name, {"content": out})
            if screen is not None and screen.stopped:
                break
        if screen is not None:
            out = screen.close()
            if out:
                chat.released()
                sent += out
                yield protocol.chunk(ident, name, {"content": out})
            chat.count(screen.triggers)
        answer = sent.strip()
        stopped = screen.stopped if screen is not None else None
        if rails is not None and stopped != "content_filter":
            context = "\n\n".join(c["text"] for c in contexts)
            final = rails.check_output(answer, context)  # what was sent is already screened
            chat.count([t for t in final.triggers if t.rule == "grounding"])
        used = chat.finish(
            question, answer, contexts, self.prompt_tokens(prompt, usage), usage.get("tokens", 0)
        )
        extra = {**cited(contexts), "guardrails": chat.rules}
        yield protocol.chunk(ident, name, {}, stopped or "stop", **extra)
        if chat.request.include_usage:
            yield {**protocol.chunk(ident, name, {}), "choices": [], "usage": used}

    @staticmethod
    def _stream_error(kind: str, status: int, detail: str, param: str | None = None) -> dict[str, Any]:
        return protocol.error(kind, status, detail, param)


def create_app(params: dict[str, Any] | None = None, backend=None, log=None, root=None):
    """The FastAPI app: the serving base with ``/v1/chat/completions`` and ``/v1/models``."""
    from ..serving.base import ServiceBase
    from ..serving.log import PredictionLog, log_dir
    from . import backends, costs

    root = root or project_root()
    params = params if params is not None else load_params()
    backend = backend if backend is not None else backends.load(params, root)
    log = log if log is not None else PredictionLog(log_dir(params))
    rails = None
    if (root / "guardrails/policy.yaml").is_file():
        from ..guardrails import policy
        from ..guardrails.rails import Rails

        rails = Rails(policy.load(root), backend.count_tokens)
    service = ChatService(params, backend, rails, costs.load(root), log)
    base = ServiceBase("Chat service", backend.source, log, params, route="chat", error=protocol.error)
    service.metrics = Metrics(base.registry)
    app = base.app
    app.state.service = service
    created = int(time.time())

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        entry = {"id": service.name, "object": "model", "created": created, "owned_by": "organization"}
        return {"object": "list", "data": [entry]}

    schema = {
        "type": "object",
        "required": ["messages"],
        "properties": {
            "model": {"type": "string", "default": service.name},
            "messages": {"type": "array", "items": {"type": "object"}},
            "stream": {"type": "boolean", "default": False},
            "max_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        },
    }
    base.post("/v1/chat/completions", service.handle, schema, threaded=True)
    return app


def main(argv: list[str] | None = None) -> int:
    from ..serving.base import serve

    def describe(app, url: str) -> str:
        service = app.state.service
        rails = "guardrails on" if service.rails is not None else "no guardrails"
        return (
            f"serving {service.name} from {service.backend.source} ({rails}) on {url}/v1 (OpenAI-compatible)"
        )

    return serve(__doc__, argv, create_app, describe)

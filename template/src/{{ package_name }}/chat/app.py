"""Deployment: the application as an OpenAI-compatible chat service (FastAPI on uvicorn).

- ``POST /v1/chat/completions``: OpenAI's chat completions, answered at once or streamed as
  server-sent events (``"stream": true``); any OpenAI client or SDK talks to it (``base_url`` =
  ``http://<host>:<port>/v1``). The last user message is the question: retrieval and the prompt
  template answer it, after every earlier turn of the conversation (the oldest left out first when
  they do not fit the model's context, ``dropped_messages`` in the response); the generator
  (``backends.py``: the registered application or an upstream server) honours ``stop``,
  ``max_tokens`` (``finish_reason: length`` when the answer reaches it; ``serving.max_tokens`` the
  most and the default), ``temperature``, ``top_p``, ``seed``, ``n`` (several answers, each
  written and screened on its own) and ``response_format`` (JSON, and
  JSON that follows a schema, by constrained decoding: ``llm/structured.py``) and ``tools``
  (``tool_calls`` back, valid by constrained decoding, streamed too: ``chat/tools.py``); a
  parameter it cannot honour is a 400 naming it (``protocol.py``);
- ``GET /v1/models``: the one model it serves (``tracking.model_name``);
- ``POST /v1/feedback``: a verdict on an answer by its request id (``chat/feedback.py``);
- ``GET /health``, ``GET /metrics`` (Prometheus): the serving base's, plus time to first token,
  tokens per second, input and output tokens, cost per request (``business/prices.yaml``),
  guardrail triggers by rule, and the grounding of the answers.

Guardrails (``guardrails/policy.yaml``, when the project has them) screen every turn before
retrieval and every answer before it leaves; a blocked request is answered with the policy's
message and ``finish_reason: content_filter``. A malformed request gets an OpenAI-style 4xx, a body
over ``serving.max_body_bytes`` a 413. Every request goes to the request log (redacted question,
answer, sources, rules, tokens, timings, cost): what monitoring reads. ``serving.trace_sample`` of
the requests are traced in MLflow. Host and port: ``serving`` in params.yaml, or ``--host``/``--port``.
"""

from __future__ import annotations

import importlib.util
import random
import time
from typing import Any

from ..config import load_params, project_root
from ..serving.log import QA_TRAFFIC
from . import budget as budget_module
from . import cache as cache_module
from . import protocol, routing, telemetry
from . import tools as tool_calling

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
        self.cache = Counter(
            "chat_cache_requests",
            "Requests the semantic cache could answer, by result",
            ["result"],
            registry=registry,
        )
        self.saved = Counter(
            "chat_saved_cost",
            "What generation the service did not do would have cost: by the cache, by routing",
            ["by"],
            registry=registry,
        )
        self.routes = Counter(
            "chat_route_requests",
            "Requests that reached generation, by the route that answered (chat/routing.py)",
            ["route"],
            registry=registry,
        )
        self.budget_refusals = Counter(
            "chat_budget_refusals",
            "Requests refused past budget.per_day or per_key_per_day",
            registry=registry,
        )
        self.variants = Counter(
            "chat_variant_requests",
            "Answered requests by variant (chat/variants.py)",
            ["variant"],
            registry=registry,
        )
        self.grounded = Histogram(
            "chat_grounded_share",
            "Share of an answer's words its context holds",
            buckets=SHARE_BUCKETS,
            registry=registry,
        )


class Chat:
    """One chat request, from the screened conversation to the logged answer."""

    def __init__(self, service, request: protocol.ChatRequest, traffic: str | None):
        self.service, self.request, self.traffic = service, request, traffic
        from ..serving.base import request_id

        self.start = time.perf_counter()
        self.request_id = request_id()  # also the x-request-id header of the answer
        self.ident = protocol.new_id(self.request_id)
        self.rules: list[str] = []
        self.first: float | None = None  # the first answer text out to the client
        self.generated: list[float] = []  # when the model's first and last pieces came
        self.span = None  # started once the input rails have screened the question
        self.dropped = 0  # earlier turns left out to fit the model's context
        self.dropped_chunks: list[str] = []  # retrieved chunks the rails kept out of the prompt
        self.finish_reason = "stop"
        self.grounded: float | None = None  # the first answer's, when the output rails measured it
        self.calls: list[dict[str, Any]] = []  # the tool calls the answers make (tools offered)
        self.agent: dict[str, Any] | None = None  # the agent's loop (tools/agent.py), when it answered
        self.variant = service.experiment.champion if service.experiment is not None else None
        self.cache_key: str | None = None  # set when the answer may go into the cache (chat/cache.py)
        self.cached_from: str | None = None  # the request whose cached answer this one gave
        self.saved = 0.0  # what that answer cost, or what the main model would have cost (routing)
        self.route: str | None = None  # chat/routing.py: the route that answered, when routing is on
        self.spent = 0.0  # what this one cost

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

    def screen(self) -> tuple[list[dict[str, str]], str | None]:
        """Every turn through the input rails (not only the question; the learned detector on the
        user's turns): the turns as the model may see them (personal data redacted), and the rule
        that blocks the request, if one does."""
        rails, messages = self.service.rails, self.request.messages
        if rails is None:
            return messages, None
        screened = []
        for message in messages:
            result = rails.check_input(message["content"], learned=message["role"] == "user")
            self.count(result.triggers)
            if result.blocked:
                return messages, result.blocked
            screened.append({**message, "content": result.text})
        return screened, None

    def keep(self, chunk: dict[str, Any]) -> bool:
        """A retrieved chunk goes into the prompt unless it carries instructions (indirect
        injection: the ``retrieved`` rail drops it, or flags it; the log names the chunk)."""
        rails = self.service.rails
        if rails is None:
            return True
        result = rails.check_retrieved(chunk["text"], chunk.get("id", ""))
        self.count(result.triggers)
        if result.blocked is not None:
            self.dropped_chunks.append(chunk.get("id", ""))
        return result.blocked is None

    def count(self, triggers) -> None:
        for trigger in triggers:
            self.service.metrics.triggers.labels(trigger.rule).inc()
            self.rules.append(trigger.rule)

    def finish(
        self, question: str, answers: list[str], contexts, prompt_tokens: int, generated: int, blocked=None
    ):
        """Metrics, the request log and the trace of an answered (or blocked) request: ``answers``
        holds one text per choice (``n``), the first of which monitoring reads as the answer."""
        service, latency = self.service, time.perf_counter() - self.start
        answer = answers[0]
        # a blocked request generated nothing: no tokens, no cost
        counted = sum(service.backend.count_tokens(a) for a in answers if a) if not blocked else 0
        answer_tokens = generated or counted
        free = self.cached_from or self.route == routing.EXTRACTIVE  # no generation, no cost
        spent = 0.0 if free else service.cost(prompt_tokens, answer_tokens)
        self.spent = spent
        metrics = service.metrics
        metrics.tokens.labels("input").inc(prompt_tokens)
        metrics.tokens.labels("output").inc(answer_tokens)
        metrics.cost.inc(spent)
        metrics.cost_per_request.observe(spent)
        grounded = None
        if contexts and answer and not blocked:
            from ..llm.scores import grounded_share

            share = self.grounded
            if share is None:
                share = grounded_share(answer, "\n\n".join(c["text"] for c in contexts))
            grounded = round(share, 4)
            metrics.grounded.observe(grounded)
        ttft = None if self.first is None else round(self.first - self.start, 4)
        if ttft is not None:
            metrics.ttft.observe(ttft)
        rate = None if blocked else self.tokens_per_second(answer_tokens)
        if rate is not None:
            metrics.rate.observe(rate)
        record = {
            "request_id": self.request_id,
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
            "turns": len(self.request.messages),
            "dropped_turns": self.dropped,
            "dropped_chunks": self.dropped_chunks,
            "finish_reason": "content_filter" if blocked else self.finish_reason,
        }
        if self.variant is not None:
            record["variant"] = self.variant.name
            if service.experiment.running:
                record["experiment"] = service.experiment.name
            service.metrics.variants.labels(self.variant.name).inc()
        if len(answers) > 1:
            record["answers"] = answers
        if self.cached_from:
            record["cached_from"], record["saved_cost"] = self.cached_from, self.saved
            metrics.saved.labels("cache").inc(self.saved)
        elif self.route is not None:
            record["route"] = self.route
            metrics.routes.labels(self.route).inc()
            if self.saved:
                record["saved_cost"] = self.saved
                metrics.saved.labels("routing").inc(self.saved)
        if service.budget is not None and service.budget.active:  # chat/budget.py
            record["key"] = budget_module.owner(self.request.key)
            service.budget.spend(record["key"], spent)
        if self.agent is not None:
            record["agent"] = self.agent
        if self.calls:  # the arguments as the privacy policy lets the log hold them
            scrub = service.rails.scrub if service.rails is not None else str
            record["tool_calls"] = [
                {"name": c["function"]["name"], "arguments": scrub(c["function"]["arguments"])}
                for c in self.calls
            ]
        service.log.write_records([record], self.traffic)
        if service.trail is not None:  # the answer's lineage, hash-chained (governance/)
            versions = service.versions
            if self.variant is not None and self.variant.about:
                versions = {**versions, "variant": self.variant.name, "variant_settings": self.variant.about}
            service.trail.append(service.lineage(versions, record, self.traffic))
        service.trace_end(self.span, record, self)
        return protocol.usage(prompt_tokens, answer_tokens)


PER_MESSAGE = 8  # tokens a chat template adds around each message (role markers), at most


class ChatService:
    def __init__(self, params: dict[str, Any], backend, rails, prices, log):
        self.params, self.backend, self.rails, self.prices, self.log = params, backend, rails, prices, log
        self.name = params["tracking"]["model_name"]
        serving = params.get("serving") or {}
        self.cap = int(serving.get("max_tokens") or params["generation"]["max_new_tokens"])
        self.trace_sample = float(serving.get("trace_sample", 0.0))
        self._tracing = False  # the tracking store and experiment set for traces (trace_start)
        generate = backend.generate
        self.context = serving.get("context_tokens") or getattr(generate, "context_tokens", None)
        self.honoured = frozenset(getattr(generate, "honours", ()))
        self.metrics: Metrics | None = None
        self.trail, self.versions, self.lineage = None, {}, None  # the audit trail (create_app)
        self.experiment = None  # chat/variants.py: champion and challenger (create_app)
        self.cache = None  # chat/cache.py: the semantic cache (create_app)
        self.budget = None  # chat/budget.py: spending limits per day and per key (create_app)
        self.router = None  # chat/routing.py: easy questions answered from the documents (create_app)
        self.agent = None  # tools/agent.py, when the project has tools: the model <name>-agent

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        from .costs import cost

        return cost(self.prices, prompt_tokens, completion_tokens)

    # ------------------------------------------------------------------ tracing (sampled)
    def trace_start(self, question: str):
        """A trace of the request, started after the input rails: ``question`` is as screened."""
        if self.trace_sample <= 0 or random.random() >= self.trace_sample:
            return None
        import mlflow

        if not self._tracing:  # the traces beside the project's runs, whatever the process set before
            from ..registry import tracking

            tracking.connect(self.params["tracking"])
            mlflow.set_experiment(self.params["tracking"]["experiment"])
            self._tracing = True
        return mlflow.start_span_no_context("chat", span_type="CHAT_MODEL", inputs={"question": question})

    def trace_end(self, span, record: dict[str, Any], chat=None) -> None:
        if span is not None:
            span.set_attributes({k: v for k, v in record.items() if k not in ("question", "answer")})
            if chat is not None:  # OpenTelemetry's GenAI conventions (chat/telemetry.py)
                telemetry.set_plain(span, telemetry.genai_attributes(self, chat, record))
            span.set_outputs({"answer": record["answer"], "sources": record["sources"]})
            span.end()

    # ------------------------------------------------------------------ the route
    def handle(self, body: bytes, traffic: str | None):
        names = (self.name, self.agent.name) if self.agent is not None else self.name
        request = protocol.parse(body, names, self.cap, self.honoured)
        if self.agent is not None and request.model == self.agent.name and (request.tools or request.n > 1):
            param = "tools" if request.tools is not None else "n"
            raise protocol.Invalid(
                f"{param}: the agent runs the project's own tools, one answer at a time", param
            )
        chat = Chat(self, request, traffic)
        messages, blocked = chat.screen()
        if blocked is not None:
            return self._blocked(chat, blocked)
        question = messages[request.last_user]["content"]
        chat.span = self.trace_start(question)
        if self.agent is not None and request.model == self.agent.name:
            return self._agent(chat, self.agent.start(messages, request, question))
        if self.experiment is not None:  # the variant of this user (chat/variants.py)
            chat.variant = self.experiment.assign(request.key or f"request:{chat.request_id}")
        if self.cache is not None and chat.traffic != QA_TRAFFIC and cache_module.eligible(request):
            key = cache_module.key_of(request, chat.variant.name if chat.variant is not None else "")
            entry, _ = self.cache.lookup(key, question)
            self.metrics.cache.labels("hit" if entry is not None else "miss").inc()
            if entry is not None:
                return self._cached(chat, question, entry)
            chat.cache_key = key
        if chat.variant is not None:
            prompt, contexts = chat.variant.prompt(question, chat.keep)
        else:
            prompt, contexts = self.backend.prompt(question, chat.keep)  # retrieval and the prompt template
        if self.router is not None and chat.traffic != QA_TRAFFIC:  # QA measures the model
            chat.route = self.router.route(question, contexts, request)
            answer = routing.extract(question, contexts) if chat.route == routing.EXTRACTIVE else ""
            if answer:
                return self._extractive(chat, question, prompt, contexts, answer)
            chat.route = routing.MAIN  # no whole sentence of the chunk answers it: the model does
        if self.budget is not None and self.budget.active:  # a cache hit or an extractive answer is free
            why = self.budget.refusal(budget_module.owner(request.key))
            if why is not None:
                self.metrics.budget_refusals.inc()
                from ..serving.base import Refused

                raise Refused("budget_exceeded", 429, why)
        if self.rails is not None:
            prompt = self.rails.mark(prompt)  # the canary that an answer reading the prompt out holds
        messages = [*messages[: request.last_user], {"role": "user", "content": prompt}]
        messages += request.messages[request.last_user + 1 :]
        if request.tools is not None:  # the tools offered, described before everything else
            messages = self.fit(chat, [request.tools.system_message(), *messages], request.last_user + 1)
        else:
            messages = self.fit(chat, messages)
        if request.stream and request.tools is None:
            from ..serving.base import Stream

            return Stream(self._events(chat, question, messages, contexts), self._stream_error)
        answers, usages = [], []
        for index in range(request.n):  # each choice written on its own
            usage: dict[str, Any] = {}
            text = ""
            for piece in self._pieces(chat, messages, usage, index):
                chat.released()  # the first token, for a client that waits for the whole answer
                text += piece
            answer = text.strip()
            if request.tools is not None:
                answer, call = tool_calling.read(answer)
                if call is not None:  # a call: nothing for the output rails to screen
                    chat.calls.append(call)
                    chat.finish_reason = "tool_calls"
                    answers.append(("", "tool_calls", [call]))
                    usages.append(usage)
                    continue
            if self.rails is not None:
                screened = self.rails.check_output(answer, "\n\n".join(c["text"] for c in contexts))
                chat.count(screened.triggers)
                if index == 0 and screened.text == answer:
                    chat.grounded = screened.grounded  # measured on the answer as it goes out
                answer = screened.text
            answers.append((answer, chat.finish_reason))
            usages.append(usage)
        used = chat.finish(
            question,
            [text for text, *_ in answers],
            contexts,
            self.prompt_tokens(messages, usages[0]),
            sum(u.get("tokens", 0) for u in usages),
        )
        self._remember(chat, question, answers[0][0], contexts)
        answer = protocol.completion(chat.ident, self.name, answers, used, self._extra(chat, contexts))
        if request.stream:  # a call is whole or nothing: it goes out as the chunks of the answer
            from ..serving.base import Stream

            return Stream(protocol.chunks(answer, request.include_usage), self._stream_error)
        return answer

    # ------------------------------------------------------------------ the agent (tools/agent.py)
    def _agent(self, chat: Chat, run):
        """The agent's loop answered: streamed, its steps as they are done, then the answer."""
        if not chat.request.stream:
            return self._agent_answer(chat, run, *self.agent.finish(run))
        from ..serving.base import Stream

        return Stream(self._agent_events(chat, run), self._stream_error)

    def _agent_events(self, chat: Chat, run):
        name, ident = self.agent.name, chat.ident
        yield protocol.chunk(ident, name, {"role": "assistant", "content": ""})
        steps = self.agent.advance(run)
        while True:
            try:
                step = next(steps)
            except StopIteration as done:
                answer = self._agent_answer(chat, run, *done.value)
                break
            yield protocol.chunk(ident, name, {}, agent_step=step)
        yield from protocol.chunks(answer, chat.request.include_usage)[1:]

    def _agent_answer(self, chat: Chat, run, text: str, finish: str) -> dict[str, Any]:
        """The loop's end as a chat completion (and its log line): the answer through the output
        rails, a bound's or a pause's sentence as it is."""
        answer = text.strip()
        if finish == "answer" and self.rails is not None:
            results = "\n\n".join(m["content"] for m in run.messages if m["role"] == "tool")
            screened = self.rails.check_output(answer, results)
            chat.count(screened.triggers)
            answer = screened.text
        chat.finish_reason = "stop" if finish in ("answer", "approval") else "length"
        chat.first = chat.first or time.perf_counter()
        chat.agent = self.agent.report(run, finish)
        used = chat.finish(run.question, [answer], [], run.prompt_tokens, run.tokens)
        extra = {"guardrails": chat.rules, "agent": chat.agent}
        return protocol.completion(chat.ident, self.agent.name, [(answer, chat.finish_reason)], used, extra)

    def decide(self, body: bytes, traffic: str | None) -> dict[str, Any]:
        """``POST /v1/actions``: a person's decision on a call waiting for approval; the loop
        resumes and the request is answered (at once, not streamed)."""
        request = protocol.json_object(body)
        ident, decision = request.get("id"), request.get("decision")
        if not isinstance(ident, str):
            raise protocol.Invalid("id: expected the action id the agent's answer named", "id")
        run = self.agent.resume(ident, decision)
        return self._agent_answer(Chat(self, run.request, traffic), run, *self.agent.finish(run))

    def fit(
        self, chat: Chat, messages: list[dict[str, str]], prompt: int | None = None
    ) -> list[dict[str, str]]:
        """The conversation within the model's context (``serving.context_tokens``, or the model's
        own): the oldest earlier turns go first, never a system message nor the prompt (at
        ``prompt``: by default the last user message); ``chat.dropped`` counts them (the response
        and the log say so)."""
        if not self.context or len(messages) == 1:
            return messages
        count = self.backend.count_tokens
        sizes = [count(m["content"]) + PER_MESSAGE for m in messages]
        total, room = sum(sizes), int(self.context) - int(chat.request.asked.max_new_tokens or self.cap)
        prompt = chat.request.last_user if prompt is None else prompt
        dropped = set()
        for number, message in enumerate(messages):
            if total <= room:
                break
            if number != prompt and message["role"] not in ("system", "developer"):
                dropped.add(number)
                total -= sizes[number]
        chat.dropped = len(dropped)
        return [m for number, m in enumerate(messages) if number not in dropped]

    def _pieces(self, chat: Chat, messages: list[dict[str, str]], usage: dict[str, Any], index: int = 0):
        """The text of choice ``index`` as the generator writes it, cut before a ``stop`` sequence;
        sets ``chat.finish_reason`` (``length`` when the answer reached its token limit). With a
        seed, choice ``index`` samples with seed + index: n different answers, reproducibly."""
        import dataclasses

        asked, generate = chat.request.asked, self.backend.generate
        if index and asked.seed is not None:
            asked = dataclasses.replace(asked, seed=asked.seed + index)
        if not chat.request.stream and hasattr(generate, "complete"):  # an upstream server: one response
            raw = iter([generate.complete(messages, asked, usage)])
        else:
            raw = generate.stream(messages, asked, usage)
        if self.experiment is not None and chat.variant is not None:
            raw = self.experiment.generating(chat.variant, raw)
        stop = protocol.StopAt(asked.stop)
        for piece in chat.timed(raw):
            out = stop.feed(piece)
            if out:
                yield out
            if stop.hit:
                break
        out = stop.close()
        if out:
            yield out
        chat.finish_reason = "stop" if stop.hit else usage.get("finish", "stop")

    # ------------------------------------------------------------------ the cache (chat/cache.py)
    def _cached(self, chat: Chat, question: str, entry):
        """The answer the cache holds for a question like this one: no retrieval, no generation."""
        chat.cached_from, chat.saved = entry.request_id, entry.cost
        chat.first, chat.finish_reason = time.perf_counter(), entry.finish_reason
        used = chat.finish(
            question, [entry.answer], entry.contexts, 0, self.backend.count_tokens(entry.answer)
        )
        extra = {**self._extra(chat, entry.contexts), "cached": True}
        answer = protocol.completion(
            chat.ident, self.name, [(entry.answer, entry.finish_reason)], used, extra
        )
        if chat.request.stream:
            from ..serving.base import Stream

            return Stream(protocol.chunks(answer, chat.request.include_usage), self._stream_error)
        return answer

    # ------------------------------------------------------------------ routing (chat/routing.py)
    def _extractive(self, chat: Chat, question: str, prompt: str, contexts, answer: str):
        """An easy question answered from its best chunk: no generation, the output rails still on,
        no longer than the request's ``max_tokens`` (``finish_reason: length`` when cut); what it
        saved is what the main model would have cost for the prompt and an answer as long."""
        answer, finish = routing.fit(answer, chat.request.asked.max_new_tokens, self.backend.count_tokens)
        if self.rails is not None:
            screened = self.rails.check_output(answer, "\n\n".join(c["text"] for c in contexts))
            chat.count(screened.triggers)
            if screened.text == answer:
                chat.grounded = screened.grounded
            answer = screened.text
        chat.first, chat.finish_reason = time.perf_counter(), finish
        tokens = self.backend.count_tokens(answer) if answer else 0
        chat.saved = self.cost(self.backend.count_tokens(prompt), tokens)
        used = chat.finish(question, [answer], contexts, 0, tokens)  # not cached: it costs nothing
        extra = self._extra(chat, contexts)
        completion = protocol.completion(chat.ident, self.name, [(answer, finish)], used, extra)
        if chat.request.stream:
            from ..serving.base import Stream

            return Stream(protocol.chunks(completion, chat.request.include_usage), self._stream_error)
        return completion

    def _remember(self, chat: Chat, question: str, answer: str, contexts) -> None:
        """Keep an answer the rails let out untouched, for questions like this one."""
        if chat.cache_key is None or chat.rules or chat.calls or not answer:
            return
        if chat.finish_reason not in ("stop", "length"):  # not content_filter, not tool_calls
            return
        entry = cache_module.Entry(
            question, answer, list(contexts), chat.spent, chat.request_id, chat.finish_reason
        )
        self.cache.store(chat.cache_key, entry)

    def _extra(self, chat: Chat, contexts) -> dict[str, Any]:
        """What a response carries beside OpenAI's fields: its sources, the rules that fired and,
        when earlier turns were left out to fit the model's context, how many."""
        extra = {**cited(contexts), "guardrails": chat.rules}
        if chat.variant is not None and self.experiment is not None and self.experiment.running:
            extra["variant"] = chat.variant.name
        if chat.route is not None:
            extra["route"] = chat.route
        if chat.dropped:
            extra["dropped_messages"] = chat.dropped
        return extra

    def _blocked(self, chat: Chat, rule: str):
        message = self.rails.blocked_message(rule)
        chat.first = time.perf_counter()
        # The question as the log may hold it: a flood not at all, personal data never.
        shown = "" if rule in ("length", "tokens") else self.rails.scrub(chat.request.question)
        chat.span = self.trace_start(shown)
        used = chat.finish(shown, [message], [], 0, 0, blocked=rule)
        extra, choices = self._extra(chat, []), range(chat.request.n)
        if not chat.request.stream:
            answers = [(message, "content_filter")] * chat.request.n
            return protocol.completion(chat.ident, self.name, answers, used, extra)
        from ..serving.base import Stream

        events = []
        for index in choices:
            delta = {"role": "assistant", "content": message}
            events.append(protocol.chunk(chat.ident, self.name, delta, index=index))
            events.append(protocol.chunk(chat.ident, self.name, {}, "content_filter", index, **extra))
        return Stream(events, self._stream_error)

    def prompt_tokens(self, messages: list[dict[str, str]], usage: dict[str, Any]) -> int:
        """The prompt's tokens, every turn sent: the upstream server's count (what it bills) when
        it sent one."""
        return int(
            usage.get("prompt_tokens") or sum(self.backend.count_tokens(m["content"]) for m in messages)
        )

    def _events(self, chat: Chat, question: str, messages, contexts):
        """Chunks of a streamed answer, as the model writes it (choice after choice when ``n`` asks
        for several): with guardrails, through the output rails' bounded hold-back
        (``StreamScreen``), which redacts personal data before it leaves and ends the choice on a
        violation (``content_filter``) or past the length limit (``length``); grounding is judged on
        the whole answer. The request is logged before the last chunk goes out."""
        name, ident, rails = self.name, chat.ident, self.rails
        answers, usages = [], []
        for index in range(chat.request.n):
            usage: dict[str, Any] = {}
            yield protocol.chunk(ident, name, {"role": "assistant", "content": ""}, index=index)
            screen = rails.stream() if rails is not None else None
            sent = ""
            for piece in self._pieces(chat, messages, usage, index):
                out = screen.feed(piece) if screen is not None else piece
                if out:
                    chat.released()
                    sent += out
                    yield protocol.chunk(ident, name, {"content": out}, index=index)
                if screen is not None and screen.stopped:
                    break
            if screen is not None:
                out = screen.close()
                if out:
                    chat.released()
                    sent += out
                    yield protocol.chunk(ident, name, {"content": out}, index=index)
                chat.count(screen.triggers)
            answer = sent.strip()
            stopped = screen.stopped if screen is not None else None
            if rails is not None and stopped != "content_filter":
                context = "\n\n".join(c["text"] for c in contexts)
                final = rails.check_output(answer, context)  # what was sent is already screened
                chat.count([t for t in final.triggers if t.rule == "grounding"])
                if index == 0:
                    chat.grounded = final.grounded
            chat.finish_reason = stopped or chat.finish_reason
            answers.append(answer)
            usages.append(usage)
            if index < chat.request.n - 1:
                yield protocol.chunk(
                    ident, name, {}, chat.finish_reason, index, **self._extra(chat, contexts)
                )
        used = chat.finish(
            question,
            answers,
            contexts,
            self.prompt_tokens(messages, usages[0]),
            sum(u.get("tokens", 0) for u in usages),
        )
        self._remember(chat, question, answers[0], contexts)
        last = chat.request.n - 1
        yield protocol.chunk(ident, name, {}, chat.finish_reason, last, **self._extra(chat, contexts))
        if chat.request.include_usage:
            yield {**protocol.chunk(ident, name, {}), "choices": [], "usage": used}

    @staticmethod
    def _stream_error(kind: str, status: int, detail: str, param: str | None = None) -> dict[str, Any]:
        return protocol.error(kind, status, detail, param)


def load_rails(root, count_tokens, detector: bool = True):
    """The project's guardrails (``guardrails/policy.yaml``), or None without the policy; with
    ``detector``, the learned injection detector the policy names, trained now (seconds)."""
    if not (root / "guardrails/policy.yaml").is_file():
        return None
    from ..guardrails import policy
    from ..guardrails.detector import for_project
    from ..guardrails.rails import Rails

    settings = policy.load(root)
    learned = detector and settings["input"]["injection"]["detector"]["action"] == "screen"
    return Rails(settings, count_tokens, for_project(root) if learned else None)


def create_app(params: dict[str, Any] | None = None, backend=None, log=None, root=None):
    """The FastAPI app: the serving base with ``/v1/chat/completions`` and ``/v1/models``."""
    from ..serving.base import ServiceBase
    from ..serving.log import PredictionLog, log_dir
    from . import backends, costs

    root = root or project_root()
    params = params if params is not None else load_params()
    backend = backend if backend is not None else backends.load(params, root)
    retention = int((params.get("serving") or {}).get("retention_days", 0))
    log = log if log is not None else PredictionLog(log_dir(params), retention)
    if retention:  # what an earlier run left past its time goes now; a new day's file does it again
        from ..serving.retention import expire_log, expire_traces

        expire_log(log.directory, retention)
        if float((params.get("serving") or {}).get("trace_sample", 0.0)) > 0:
            expire_traces(retention)
    rails = load_rails(root, backend.count_tokens)
    telemetry.configure(params)  # before the first span: OTLP export beside MLflow's store
    service = ChatService(params, backend, rails, costs.load(root), log)
    from ..governance import audit, lineage, trail

    days = int((params.get("audit") or {}).get("retention_days", 0))
    service.trail = trail.Trail(audit.folder(params, root), days)
    service.versions, service.lineage = lineage.versions(backend, params, root), lineage.record
    from . import variants

    service.experiment = variants.load(params, backend, root)
    service.cache = cache_module.load(params, root, getattr(backend.assistant, "retriever", None))
    service.budget = budget_module.load(params, log.directory)
    service.router = routing.load(params)
    if importlib.util.find_spec(f"{__package__.rsplit('.', 1)[0]}.tools") is not None:
        from ..tools.agent import Agent

        service.agent = Agent(service, params, root=root)
    base = ServiceBase("Chat service", backend.source, log, params, route="chat", error=protocol.error)
    service.metrics = Metrics(base.registry)
    app = base.app
    app.state.service = service
    created = int(time.time())

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        names = [service.name] + ([service.agent.name] if service.agent is not None else [])
        entries = [
            {"id": n, "object": "model", "created": created, "owned_by": "organization"} for n in names
        ]
        return {"object": "list", "data": entries}

    schema = {
        "type": "object",
        "required": ["messages"],
        "properties": {
            "model": {"type": "string", "default": service.name},
            "messages": {"type": "array", "items": {"type": "object"}},
            "stream": {"type": "boolean", "default": False},
            "max_tokens": {"type": "integer", "minimum": 1, "maximum": service.cap},
            "max_completion_tokens": {"type": "integer", "minimum": 1, "maximum": service.cap},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1},
            "seed": {"type": "integer"},
            "stop": {
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]
            },
            "n": {"type": "integer", "minimum": 1, "maximum": protocol.MAX_CHOICES, "default": 1},
            "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        },
    }
    base.post("/v1/chat/completions", service.handle, schema, threaded=True)
    from . import feedback

    feedback_log = PredictionLog(feedback.folder(log.directory), retention)
    verdict = {"type": "string", "enum": list(feedback.VERDICTS)}
    properties = {"request_id": {"type": "string"}, "verdict": verdict, "comment": {"type": "string"}}
    shape = {"type": "object", "required": ["request_id", "verdict"], "properties": properties}
    base.post("/v1/feedback", feedback.handler(feedback_log, rails), shape)
    if service.agent is not None:
        decision = {"type": "string", "enum": ["approve", "reject"]}
        properties = {"id": {"type": "string"}, "decision": decision}
        shape = {"type": "object", "required": ["id", "decision"], "properties": properties}
        base.post("/v1/actions", service.decide, shape, threaded=True)
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

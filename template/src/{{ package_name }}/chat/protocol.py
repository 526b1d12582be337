"""The OpenAI chat-completions protocol, as much of it as the service speaks.

``parse(body)`` turns a request body into a ``ChatRequest`` or raises ``Refused`` with the status
and the message an OpenAI client expects (400 ``invalid_request_error`` naming the parameter, 404
for an unknown model); ``error`` shapes every refusal as ``{"error": {"message", "type", "param",
"code"}}``. ``completion`` and ``chunk`` build the answers (``chat.completion`` and
``chat.completion.chunk``). Every message of a conversation is read (text parts, an assistant's
``tool_calls``, ``role: tool`` results); ``stop``, ``max_tokens``/``max_completion_tokens``,
``temperature``, ``top_p``, ``seed``, ``n`` (up to ``MAX_CHOICES`` answers, each written on its
own: with a seed, choice ``i`` samples with seed + i) and ``tools``/``tool_choice`` (``tools.py``)
are honoured, the penalties where the generator has them (an upstream server). A parameter nothing
here does (``logprobs``: the output rails may change an answer's text, which its tokens'
probabilities would then not match, ...) is refused with a 400
naming it, as is an unknown one, never accepted and ignored; ``user``, ``metadata`` and the like,
which do not change the answer, are accepted.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..errors import shorten
from ..llm.generate import Asked
from ..serving.base import Refused
from . import tools as tool_calling

ROLES = {"system", "developer", "user", "assistant", "tool"}
MAX_CHOICES = 8  # n: answers per request, each generated in full
TYPES = {400: "invalid_request_error", 404: "invalid_request_error", 413: "invalid_request_error"}
TYPES[429] = "insufficient_quota"  # budget.per_day or per_key_per_day spent (chat/budget.py)


@dataclass
class ChatRequest:
    messages: list[dict[str, str]]  # every turn, as {"role", "content"} with its text
    asked: Asked  # the generation settings the request asks for
    stream: bool
    include_usage: bool
    n: int = 1  # answers to write (choices)
    tools: tool_calling.Offered | None = None  # the tools the model may call (tools, tool_choice)
    model: str = ""  # the model asked for (the service's, or its agent's)
    key: str = ""  # who asks (``user``, ``safety_identifier`` or ``prompt_cache_key``): A/B groups

    @property
    def last_user(self) -> int:
        return max(i for i, m in enumerate(self.messages) if m["role"] == "user")

    @property
    def question(self) -> str:
        """The last user message: what retrieval looks up and the prompt template answers."""
        return self.messages[self.last_user]["content"]


def error(kind: str, status: int, detail: str, param: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error body."""
    return {
        "error": {
            "message": detail,
            "type": TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
            "param": param,
            "code": kind,
        }
    }


class Invalid(Refused):
    def __init__(
        self, detail: str, param: str | None = None, status: int = 400, kind: str = "invalid_request"
    ):
        super().__init__(kind, status, detail)
        self.param = param


def json_object(body: bytes) -> dict[str, Any]:
    """``body`` as a JSON object, or ``Invalid``."""
    import orjson

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Invalid("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object")
    return data


def text_of(content: Any, where: str) -> str:
    """A message's text: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for number, part in enumerate(content):
            if not (
                isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
            ):
                raise Invalid(f"{where}[{number}]: only text parts are supported", where)
            texts.append(part["text"])
        return "\n".join(texts)
    raise Invalid(f"{where}: expected a string or a list of text parts", where)


# Parameters that do not change the answer (accounting, routing, caching): accepted.
NEUTRAL = {"user", "metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier"}
# Parameters the service honours itself (the rest of this module reads them).
READ = {"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens"}
READ |= {"temperature", "top_p", "seed", "stop", "n", "presence_penalty", "frequency_penalty"}
READ |= {"response_format", "tools", "tool_choice", "parallel_tool_calls"}
# Accepted at their "off" value only: the service has nothing that does them (yet).
NOT_YET = {
    "functions": "the deprecated functions (use tools)",
    "function_call": "the deprecated function_call (use tool_choice)",
    "logprobs": "log probabilities",
    "top_logprobs": "log probabilities",
    "logit_bias": "biasing tokens",
    "audio": "audio",
    "modalities": "other modalities than text",
    "prediction": "predicted outputs",
    "reasoning_effort": "reasoning settings",
    "verbosity": "verbosity settings",
    "web_search_options": "web search",
}
OFF = (None, False, "none", "auto", [], {}, {"type": "text"}, ["text"])


def _number(request: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = request.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise Invalid(f"{name}: expected a number from {low:g} to {high:g}", name)
    return float(value)


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) and s for s in stops):
        raise Invalid("stop: expected a string or a list of up to 4 non-empty strings", "stop")
    return tuple(stops)


def _messages(messages: Any) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise Invalid("messages: expected a non-empty list of messages", "messages")
    turns, called = [], {}
    for number, message in enumerate(messages):
        where = f"messages[{number}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise Invalid(f"{where}: expected an object with a role ({', '.join(sorted(ROLES))})", where)
        content = message.get("content")
        if content is None and message["role"] in ("assistant", "tool"):
            content = ""
        text = text_of(content, f"{where}.content")
        if message.get("tool_calls"):  # the model's own calls, as it wrote them
            try:
                calls = tool_calling.check_calls(message, where)
            except tool_calling.Invalid as error:
                raise Invalid(str(error), error.param) from None
            called.update({c["id"]: c["function"]["name"] for c in calls})
            text = "\n".join([text, *map(tool_calling.call_text, calls)]).strip()
        elif message["role"] == "tool":
            ident = message.get("tool_call_id")
            if not isinstance(ident, str) or ident not in called:
                raise Invalid(f"{where}.tool_call_id: no earlier assistant message made that call", where)
            text = tool_calling.result_text(called[ident], text)
        turns.append({"role": message["role"], "content": text})
    if not any(t["role"] == "user" and t["content"].strip() for t in turns):
        raise Invalid("messages: no user message with text to answer", "messages")
    if not turns[max(i for i, t in enumerate(turns) if t["role"] == "user")]["content"].strip():
        raise Invalid("messages: the last user message has no text to answer", "messages")
    return turns


def parse(
    body: bytes, served: str | tuple[str, ...], max_tokens_cap: int, honoured: frozenset[str] = frozenset()
) -> ChatRequest:
    """The request in ``body``, or ``Invalid`` naming the parameter: an unknown one, a value out of
    range, or one that neither the service nor its generator can honour (``honoured``: the optional
    parameters the generator takes, e.g. ``presence_penalty`` upstream). ``served``: the model's
    name, or the names it answers to (the first by default)."""
    names = (served,) if isinstance(served, str) else tuple(served)
    request = json_object(body)
    for name, value in request.items():
        if name in NOT_YET and value not in OFF:
            raise Invalid(f"{name}: this service does not support {NOT_YET[name]} yet", name)
        if name not in READ | NEUTRAL | set(NOT_YET):
            raise Invalid(f"Unrecognized request argument supplied: {shorten(name)}", shorten(name))
    model = request.get("model") or names[0]
    if not isinstance(model, str):
        raise Invalid("model: expected a string", "model")
    if model not in names:
        raise Invalid(
            f"the model {shorten(model)!r} does not exist: this service serves {' and '.join(map(repr, names))}",
            "model",
            404,
            "model_not_found",
        )
    messages = _messages(request.get("messages"))
    stream = request.get("stream", False)
    if not isinstance(stream, bool):
        raise Invalid("stream: expected true or false", "stream")
    name = "max_completion_tokens" if request.get("max_completion_tokens") is not None else "max_tokens"
    tokens = request.get(name)
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1):
        raise Invalid(f"{name}: expected a whole number of at least 1", name)
    if tokens is not None and tokens > max_tokens_cap:
        raise Invalid(f"{name}: at most {max_tokens_cap} tokens per answer here (serving.max_tokens)", name)
    n = request.get("n")
    n = 1 if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CHOICES:
        raise Invalid(f"n: expected a whole number of choices from 1 to {MAX_CHOICES}", "n")
    seed = request.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise Invalid("seed: expected a whole number", "seed")
    for penalty in ("presence_penalty", "frequency_penalty"):
        if request.get(penalty) not in (None, 0) and penalty not in honoured:
            raise Invalid(f"{penalty}: the model this service runs has no such setting", penalty)
    response_format = request.get("response_format")
    if response_format is not None:
        from ..llm.structured import FormatError, check, schema_of

        try:
            schema = schema_of(response_format)
            if schema is not None and "response_format" not in honoured:
                raise FormatError("the model this service runs cannot be held to a format")
            if schema is not None:
                check(schema)  # a schema it cannot follow is refused now, not mid-answer
        except FormatError as error:
            raise Invalid(f"response_format: {error}", "response_format") from None
        response_format = response_format if schema is not None else None
    try:
        offered = tool_calling.offered(request.get("tools"), request.get("tool_choice"))
    except tool_calling.Invalid as error:
        raise Invalid(str(error), error.param) from None
    if request.get("parallel_tool_calls") not in (None, True, False):
        raise Invalid("parallel_tool_calls: expected true or false", "parallel_tool_calls")
    if offered is not None:
        from ..llm.structured import FormatError, check

        if response_format is not None:
            raise Invalid(
                "response_format: not together with tools (a call is JSON already)", "response_format"
            )
        if "response_format" not in honoured:
            raise Invalid(
                "tools: the model this service runs cannot be held to a tool call's format", "tools"
            )
        try:
            check(offered.schema())
        except FormatError as error:
            raise Invalid(f"tools: a tool's parameters {error}", "tools") from None
        response_format = offered.response_format()
    asked = Asked(
        max_new_tokens=tokens or max_tokens_cap,
        temperature=_number(request, "temperature", 0, 2),
        top_p=_number(request, "top_p", 0, 1),
        seed=seed,
        stop=_stop(request.get("stop")),
        presence_penalty=_number(request, "presence_penalty", -2, 2),
        frequency_penalty=_number(request, "frequency_penalty", -2, 2),
        response_format=response_format,
        tools=offered,
    )
    options = request.get("stream_options") or {}
    include_usage = bool(options.get("include_usage")) if isinstance(options, dict) else False
    from .variants import key_of

    return ChatRequest(messages, asked, stream, include_usage, n, offered, model, key_of(request))


class StopAt:
    """A stream cut before the first of the request's ``stop`` sequences (which is not sent):
    ``feed(piece)`` returns what may go out, holding back a tail that may still become one."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops, self.hold = stops, max((len(s) for s in stops), default=1) - 1
        self.buffer, self.hit = "", False

    def feed(self, piece: str) -> str:
        if not self.stops:
            return piece
        if self.hit:
            return ""
        self.buffer += piece
        found = [at for at in (self.buffer.find(s) for s in self.stops) if at >= 0]
        if found:
            self.hit, out, self.buffer = True, self.buffer[: min(found)], ""
            return out
        cut = len(self.buffer) - self.hold
        out, self.buffer = (self.buffer[:cut], self.buffer[cut:]) if cut > 0 else ("", self.buffer)
        return out

    def close(self) -> str:
        out, self.buffer = ("" if self.hit else self.buffer), ""
        return out


def new_id(request_id: str = "") -> str:
    """A completion's id: ``chatcmpl-`` and the request's id (the ``x-request-id`` header)."""
    return f"chatcmpl-{request_id or uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def message(text: str | None, calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An assistant message: its text, or the tools it calls (``content`` null, as OpenAI's)."""
    if calls:
        return {"role": "assistant", "content": None, "tool_calls": calls}
    return {"role": "assistant", "content": text}


def completion(
    ident: str, model: str, answers: list[tuple], tokens: dict[str, int], extra: dict[str, Any]
) -> dict[str, Any]:
    """A ``chat.completion`` with one choice per ``(text, finish_reason)`` of ``answers`` (or
    ``(text, finish_reason, tool_calls)``)."""
    choices = [
        {"index": index, "message": message(*answer[:1], *answer[2:]), "finish_reason": answer[1]}
        for index, answer in enumerate(answers)
    ]
    return {
        "id": ident,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": tokens,
        **extra,
    }


def chunk(
    ident: str, model: str, delta: dict[str, Any], finish: str | None = None, index: int = 0, **extra
) -> dict[str, Any]:
    return {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def chunks(answer: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """A whole ``chat.completion`` as the chunks of a stream (each choice: its role, its text or
    its tool calls, then its finish reason; the usage last when asked for)."""
    ident, model = answer["id"], answer["model"]
    extra = {
        k: v for k, v in answer.items() if k not in ("id", "object", "created", "model", "choices", "usage")
    }
    out = []
    for choice in answer["choices"]:
        index, said = choice["index"], choice["message"]
        out.append(chunk(ident, model, {"role": "assistant", "content": ""}, index=index))
        for number, call in enumerate(said.get("tool_calls") or []):
            named = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
            out.append(chunk(ident, model, {"tool_calls": [{"index": number, **named}]}, index=index))
            arguments = {"function": {"arguments": call["function"]["arguments"]}}
            out.append(chunk(ident, model, {"tool_calls": [{"index": number, **arguments}]}, index=index))
        if said.get("content"):
            out.append(chunk(ident, model, {"content": said["content"]}, index=index))
        out.append(chunk(ident, model, {}, choice["finish_reason"], index, **extra))
    if include_usage:
        out.append({**chunk(ident, model, {}), "choices": [], "usage": answer["usage"]})
    return out

"""The OpenAI chat-completions protocol, as much of it as the service speaks.

``parse(body)`` turns a request body into a ``ChatRequest`` or raises ``Refused`` with the status
and the message an OpenAI client expects (400 ``invalid_request_error`` naming the parameter, 404
for an unknown model); ``error`` shapes every refusal as ``{"error": {"message", "type", "param",
"code"}}``. ``completion`` and ``chunk`` build the answers (``chat.completion`` and
``chat.completion.chunk``). Fields the service does not use (``top_p``, ``user``, ...) are accepted
and ignored, as OpenAI-compatible servers do; ``n`` other than 1 is refused.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..errors import shorten
from ..serving.base import Refused

ROLES = {"system", "developer", "user", "assistant", "tool"}
TYPES = {400: "invalid_request_error", 404: "invalid_request_error", 413: "invalid_request_error"}


@dataclass
class ChatRequest:
    question: str
    stream: bool
    max_tokens: int | None
    temperature: float | None
    include_usage: bool


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


def parse(body: bytes, served: str, max_tokens_cap: int) -> ChatRequest:
    import orjson

    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Invalid("the body is not valid JSON") from None
    if not isinstance(request, dict):
        raise Invalid("the body must be a JSON object")
    model = request.get("model", served)
    if not isinstance(model, str):
        raise Invalid("model: expected a string", "model")
    if model not in (served, ""):
        raise Invalid(
            f"the model {shorten(model)!r} does not exist: this service serves {served!r}",
            "model",
            404,
            "model_not_found",
        )
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Invalid("messages: expected a non-empty list of messages", "messages")
    question = None
    for number, message in enumerate(messages):
        where = f"messages[{number}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise Invalid(f"{where}: expected an object with a role ({', '.join(sorted(ROLES))})", where)
        text = text_of(message.get("content", ""), f"{where}.content")
        if message["role"] == "user":
            question = text
    if question is None or not question.strip():
        raise Invalid("messages: no user message with text to answer", "messages")
    stream = request.get("stream", False)
    if not isinstance(stream, bool):
        raise Invalid("stream: expected true or false", "stream")
    tokens = request.get("max_completion_tokens", request.get("max_tokens"))
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1):
        raise Invalid("max_tokens: expected a whole number of at least 1", "max_tokens")
    temperature = request.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2
    ):
        raise Invalid("temperature: expected a number from 0 to 2", "temperature")
    if request.get("n", 1) != 1:
        raise Invalid("n: this service answers with one choice", "n")
    options = request.get("stream_options") or {}
    include_usage = bool(options.get("include_usage")) if isinstance(options, dict) else False
    return ChatRequest(
        question,
        stream,
        min(tokens, max_tokens_cap) if tokens else None,
        None if temperature is None else float(temperature),
        include_usage,
    )


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(
    ident: str, model: str, text: str, finish: str, tokens: dict[str, int], extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": ident,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": tokens,
        **extra,
    }


def chunk(
    ident: str, model: str, delta: dict[str, Any], finish: str | None = None, **extra
) -> dict[str, Any]:
    return {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }

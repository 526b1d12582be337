"""Structured output: ``response_format`` (``json_object``, ``json_schema``) by constrained decoding.

The request's JSON schema is compiled into a grammar by llguidance (the structured-generation
engine several inference servers use), and at each step of generation only the tokens that keep
the answer a prefix of a valid document may be chosen: any model, ``tiny`` included, writes JSON
that parses and follows the schema. An answer cut by its token limit before the document closes
ends with ``finish_reason: length``, as OpenAI's does; bound a schema's strings (``maxLength``) and
arrays (``maxItems``) to keep answers within the limit.
"""

from __future__ import annotations

import functools
from typing import Any


class FormatError(ValueError):
    """A ``response_format`` that is not one this module can follow (the message says why)."""


def schema_of(response_format: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a ``response_format`` asks for (None: plain text)."""
    if not isinstance(response_format, dict) or not isinstance(response_format.get("type"), str):
        raise FormatError("expected an object with a type: text, json_object or json_schema")
    kind = response_format["type"]
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise FormatError("json_schema: expected an object with a name and a schema")
        return spec.get("schema") or {"type": "object"}
    raise FormatError(f"type: expected text, json_object or json_schema, got {kind!r}")


def grammar(schema: dict[str, Any]) -> str:
    """The schema as an llguidance grammar; ``FormatError`` when it cannot be compiled."""
    import llguidance

    try:
        compiled = llguidance.LLMatcher.grammar_from_json_schema(
            schema, defaults={"whitespace_flexible": False}
        )
    except (ValueError, RuntimeError, TypeError) as error:
        raise FormatError(f"the schema cannot be followed: {error}") from None
    failed, problems = llguidance.LLMatcher.validate_grammar_with_warnings(compiled)
    if failed:
        raise FormatError(f"the schema cannot be followed: {'; '.join(problems)[:300]}")
    return compiled


def check(schema: dict[str, Any]) -> None:
    """Refuse a schema that cannot be followed before generation starts (where llguidance is
    installed: a project that only fronts an upstream server leaves that to the server)."""
    import importlib.util

    if importlib.util.find_spec("llguidance") is not None:
        grammar(schema)


@functools.lru_cache(maxsize=4)
def _tokenizer(tokenizer):
    import llguidance.hf

    return llguidance.hf.from_tokenizer(tokenizer)


def processor(tokenizer, schema: dict[str, Any]):
    """A transformers logits processor that keeps one answer within ``schema`` (batch of one)."""
    import llguidance
    import numpy as np
    import torch
    from transformers import LogitsProcessor

    matcher = llguidance.LLMatcher(_tokenizer(tokenizer), grammar(schema))
    if matcher.is_error():
        raise FormatError(f"the schema cannot be followed: {matcher.get_error()}")

    class Constrained(LogitsProcessor):
        def __init__(self):
            self.prompt_length: int | None = None

        def __call__(self, input_ids, scores):
            if self.prompt_length is None:
                self.prompt_length = input_ids.shape[1]
            else:
                matcher.consume_token(int(input_ids[0, -1]))
            bits = np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8)
            allowed = np.unpackbits(bits, bitorder="little")[: scores.shape[1]].astype(bool)
            scores[:, ~torch.from_numpy(allowed).to(scores.device)] = float("-inf")
            return scores

    return Constrained()

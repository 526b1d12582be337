"""Tool calling through the OpenAI protocol: ``tools`` and ``tool_choice`` in, ``tool_calls`` out.

The client's tools (``tools``: ``{"type": "function", "function": {"name", "description",
"parameters"}}``) are described to the model in a system message, and the model writes one JSON
document by constrained decoding (``llm/structured.py``): ``{"tool": <name>, "arguments": {...}}``,
the arguments held to that tool's schema, or, where ``tool_choice`` is ``auto``,
``{"answer": "..."}``. So every model, ``tiny`` included, calls only tools it was offered, with
arguments that follow their schema (the arguments a schema declares, and no others: a schema with
``properties`` and no ``additionalProperties`` is read as ``false``, as OpenAI's strict mode
writes it); an upstream server is held to the same document through its
own ``response_format``, or, with ``serving.upstream_tools: native``, is given the tools as its own
``tools`` (an engine that calls tools itself, e.g. vLLM with a tool parser) and the call it returns
is checked here against the tool's schema (``Offered.from_native``) before anyone sees it. A call goes back as the message's ``tool_calls`` with ``finish_reason:
tool_calls``; the client runs the tool and continues the conversation with a ``role: tool``
message, which the model then reads (a call it made earlier is shown to it as the document it wrote).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from ..errors import shorten

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TOOLS = 128
PREAMBLE = (
    "You can call tools. To call one, write a JSON object "
    '{"tool": <its name>, "arguments": {<its arguments>}}{answer}. The tools:\n'
)


@dataclass(frozen=True)
class Offered:
    """The tools of one request and what ``tool_choice`` allows: ``choice`` is ``auto`` (call one
    or answer), ``required`` (call one) or the name of the one tool to call."""

    tools: tuple[dict[str, Any], ...]  # {"name", "description", "parameters"} each
    choice: str

    @property
    def names(self) -> list[str]:
        return [t["name"] for t in self.tools]

    def schema(self) -> dict[str, Any]:
        """The JSON schema of what the model may write."""
        calls = [
            {
                "type": "object",
                "properties": {"tool": {"const": t["name"]}, "arguments": t["parameters"]},
                "required": ["tool", "arguments"],
                "additionalProperties": False,
            }
            for t in self.tools
            if self.choice in ("auto", "required") or t["name"] == self.choice
        ]
        if self.choice == "auto":
            answer = {"type": "string", "maxLength": 4000}
            calls.append(
                {
                    "type": "object",
                    "properties": {"answer": answer},
                    "required": ["answer"],
                    "additionalProperties": False,
                }
            )
        return calls[0] if len(calls) == 1 else {"anyOf": calls}

    def native(self) -> dict[str, Any]:
        """The tools as an engine that calls tools itself takes them (``serving.upstream_tools:
        native``): the request's ``tools``, ``tool_choice`` and one call per turn."""
        choice: Any = self.choice
        if choice not in ("auto", "required"):
            choice = {"type": "function", "function": {"name": choice}}
        tools = [{"type": "function", "function": dict(item)} for item in self.tools]
        return {"tools": tools, "tool_choice": choice, "parallel_tool_calls": False}

    def from_native(self, message: dict[str, Any]) -> str:
        """An engine's answer (its ``tool_calls``, else its text) as the document constrained
        decoding writes, once checked: a call of a tool offered (and allowed by ``tool_choice``),
        arguments that are JSON and follow the tool's schema; ``ValueError`` says what is wrong.
        Of several calls, the first (``parallel_tool_calls`` is false)."""
        import orjson

        calls = message.get("tool_calls") or []
        if not calls:
            if self.choice != "auto":
                raise ValueError("it answered without a tool call, though tool_choice asks for one")
            return answer_text(message.get("content") or "")
        function = calls[0].get("function") if isinstance(calls[0], dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        allowed = {
            t["name"]: t
            for t in self.tools
            if self.choice in ("auto", "required") or t["name"] == self.choice
        }
        if name not in allowed:
            raise ValueError(f"it called {shorten(repr(name))}, which this request does not offer")
        raw = function.get("arguments") or "{}"
        try:
            arguments = orjson.loads(raw) if isinstance(raw, str) else raw
        except orjson.JSONDecodeError:
            raise ValueError(f"its arguments for {name} are not JSON: {shorten(str(raw))}") from None
        wrong = problems(allowed[name]["parameters"], arguments)
        if wrong:
            raise ValueError(f"its arguments for {name} do not follow the schema: {'; '.join(wrong)}")
        return orjson.dumps({"tool": name, "arguments": arguments}).decode()

    def response_format(self) -> dict[str, Any]:
        return {"type": "json_schema", "json_schema": {"name": "tool_call", "schema": self.schema()}}

    def described(self) -> str:
        """The tools the model may call, a line each: name, description, arguments' schema."""
        import orjson

        return "".join(
            f"- {item['name']}: {item['description']} Arguments: {orjson.dumps(item['parameters']).decode()}\n"
            for item in self.tools
            if self.choice in ("auto", "required") or item["name"] == self.choice
        ).strip()

    def system_message(self, template: str | None = None) -> dict[str, str]:
        """The tools as the model reads them: ``template`` (a prompt with ``{{tools}}``, e.g. the
        agent's ``prompts/agent.txt``) filled with them, else how to call them and the list."""
        if template is not None:
            from ..llm.prompts import VARIABLE

            return {
                "role": "system",
                "content": VARIABLE.sub(
                    lambda m: self.described() if m.group(1) == "tools" else m.group(0), template
                ).strip(),
            }
        answer = ', or {"answer": <your answer>} to answer without one' if self.choice == "auto" else ""
        return {"role": "system", "content": PREAMBLE.replace("{answer}", answer) + self.described()}


def problems(schema: dict[str, Any], value: Any) -> list[str]:
    """What in ``value`` does not follow the JSON ``schema``, a line each (empty: it follows)."""
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    found = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    return [f"{'.'.join(map(str, e.absolute_path)) or '(arguments)'}: {e.message}" for e in found]


class Invalid(ValueError):
    """A ``tools``/``tool_choice``/message that is not one the protocol allows; ``param`` names it."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


def offered(tools: Any, choice: Any) -> Offered | None:
    """The request's ``tools`` and ``tool_choice`` checked (None: no tool may be called)."""
    if tools is None or tools == []:
        if choice not in (None, "none", "auto"):
            raise Invalid("tool_choice: the request offers no tools", "tool_choice")
        return None
    if not isinstance(tools, list) or len(tools) > MAX_TOOLS:
        raise Invalid(f"tools: expected a list of up to {MAX_TOOLS} tools", "tools")
    found: list[dict[str, Any]] = []
    for number, item in enumerate(tools):
        where = f"tools[{number}]"
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(item, dict) or item.get("type") != "function" or not isinstance(function, dict):
            raise Invalid(f'{where}: expected {{"type": "function", "function": {{...}}}}', where)
        name = function.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise Invalid(
                f"{where}.function.name: 1-64 letters, digits, _ or -, got {shorten(repr(name))}", where
            )
        if name in (t["name"] for t in found):
            raise Invalid(f"{where}.function.name: {name!r} is offered twice", where)
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict):
            raise Invalid(f"{where}.function.parameters: expected a JSON schema object", where)
        description = function.get("description", "")
        if not isinstance(description, str):
            raise Invalid(f"{where}.function.description: expected a string", where)
        if "properties" in parameters and "additionalProperties" not in parameters:
            parameters = {**parameters, "additionalProperties": False}  # the arguments it declares
        found.append({"name": name, "description": description, "parameters": parameters})
    if choice is None or choice == "auto":
        picked = "auto"
    elif choice == "none":
        return None
    elif choice == "required":
        picked = "required"
    elif (
        isinstance(choice, dict)
        and choice.get("type") == "function"
        and isinstance(choice.get("function"), dict)
        and isinstance(choice["function"].get("name"), str)
    ):
        picked = choice["function"]["name"]
        if picked not in (t["name"] for t in found):
            raise Invalid(f"tool_choice: {shorten(picked)!r} is not one of the tools offered", "tool_choice")
    else:
        raise Invalid(
            'tool_choice: expected none, auto, required or {"type": "function", ...}', "tool_choice"
        )
    return Offered(tuple(found), picked)


def answer_text(answer: str) -> str:
    """An answer as the model writes it when it may call tools (``tool_choice: auto``)."""
    import orjson

    return orjson.dumps({"answer": answer}).decode()


def result_text(name: str, result: str) -> str:
    """A tool's result as the model reads it (the message after its call)."""
    return f"{name} returned: {result}"


def call_text(call: dict[str, Any]) -> str:
    """An assistant's tool call as the model wrote it (the conversation shows it so)."""
    import orjson

    function = call.get("function") or {}
    raw = function.get("arguments") or "{}"
    try:
        arguments = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        arguments = raw
    return orjson.dumps({"tool": function.get("name"), "arguments": arguments}).decode()


def check_calls(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    calls = message.get("tool_calls")
    if not isinstance(calls, list) or not all(
        isinstance(c, dict)
        and isinstance(c.get("id"), str)
        and isinstance(c.get("function"), dict)
        and isinstance(c["function"].get("name"), str)
        for c in calls
    ):
        raise Invalid(
            f"{where}.tool_calls: expected a list of {{id, type, function: {{name, arguments}}}}", where
        )
    if message.get("role") != "assistant":
        raise Invalid(f"{where}.tool_calls: only an assistant message calls tools", where)
    return calls


def read(text: str) -> tuple[str | None, dict[str, Any] | None]:
    """What the model wrote: ``(answer, None)`` or ``(None, tool_call)`` (OpenAI's shape, with a
    fresh ``call_`` id); ``(text, None)`` when it is not a whole document (cut by ``max_tokens``)."""
    import orjson

    try:
        written = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text, None
    if isinstance(written, dict) and isinstance(written.get("tool"), str):
        arguments = orjson.dumps(written.get("arguments") or {}).decode()
        call = {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": written["tool"], "arguments": arguments},
        }
        return None, call
    if isinstance(written, dict) and isinstance(written.get("answer"), str):
        return written["answer"], None
    return text, None

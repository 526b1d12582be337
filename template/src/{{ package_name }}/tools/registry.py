"""Tools as code: a tool is a typed Python function, registered with ``@tool``.

Its JSON schema comes from its signature and docstring, never written by hand: every parameter
needs a type annotation (``str``, ``int``, ``Literal[...]``, a pydantic model, ...), a default
makes it optional, and the docstring's first paragraph describes the tool, its ``Args:`` lines
(``name: what it is``) each parameter. ``@tool(...)`` also says how long a call may take
(``timeout_s``), whether it changes anything outside the call (``side_effects``) and whether a
person must approve each call first (``approval``: on by default for a tool with side effects).
A tool's version is the hash of its source: what a run or a trace records of the tools offered.

``registered()`` imports the tool modules (``MODULES``) and returns every tool by name; a schema
the registry cannot build, or two tools of one name, is an error naming the function.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..chat.tools import NAME  # what the OpenAI protocol allows as a function name
from ..errors import SettingsError

MODULES = ("helpdesk",)  # the modules of this folder that define tools, imported by registered()
_TOOLS: dict[str, Tool] = {}


class ToolError(Exception):
    """A call that could not run: arguments that do not fit the schema, a timeout, or the tool's
    own error. ``kind`` says which (``arguments``, ``timeout``, ``failed``, ``unknown``)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Tool:
    name: str
    function: Callable[..., Any] = field(repr=False)
    description: str
    parameters: dict[str, Any]  # the JSON schema of the arguments
    timeout_s: float
    side_effects: bool
    approval: bool
    version: str
    model: Any = field(
        repr=False, compare=False
    )  # the pydantic model that checks the arguments (None: the schema does)

    def spec(self) -> dict[str, Any]:
        """The tool as a request's ``tools`` entry (the OpenAI protocol)."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def arguments(self, raw: Any) -> dict[str, Any]:
        """``raw`` (a mapping, or its JSON text) checked against the schema: the arguments the
        function is called with, or ``ToolError('arguments', ...)`` naming what is wrong."""
        import orjson
        from pydantic import ValidationError

        if isinstance(raw, str | bytes):
            try:
                raw = orjson.loads(raw or b"{}")
            except orjson.JSONDecodeError:
                raise ToolError("arguments", f"{self.name}: the arguments are not valid JSON") from None
        if not isinstance(raw, dict):
            raise ToolError("arguments", f"{self.name}: the arguments must be a JSON object")
        if self.model is None:  # a tool known by its schema alone (another MCP server's: remote.py)
            return self._checked_by_schema(raw)
        try:
            checked = self.model.model_validate(raw)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(arguments)'}: {e['msg']}"
                for e in error.errors(include_url=False)
            )
            raise ToolError("arguments", f"{self.name}: {problems}") from None
        return {name: getattr(checked, name) for name in type(checked).model_fields}

    def _checked_by_schema(self, raw: dict[str, Any]) -> dict[str, Any]:
        from ..chat.tools import problems

        wrong = problems(self.parameters, raw)
        if wrong:
            raise ToolError("arguments", f"{self.name}: {'; '.join(wrong)}")
        return raw

    def call(self, raw: Any) -> Any:
        """Check ``raw`` and run the tool, in a thread bounded by ``timeout_s``: a call past it is
        ``ToolError('timeout')`` (the thread is left to finish on its own); an exception the tool
        raises is ``ToolError('failed')`` with its message."""
        arguments = self.arguments(raw)
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["value"] = self.function(**arguments)
            except Exception as error:  # handed back below, as the call's failure
                outcome["error"] = error

        worker = threading.Thread(target=run, name=f"tool-{self.name}", daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        if worker.is_alive():
            raise ToolError("timeout", f"{self.name} took longer than {self.timeout_s:g} s")
        if "error" in outcome:
            error = outcome["error"]
            raise ToolError("failed", f"{self.name} failed: {type(error).__name__}: {error}")
        return outcome.get("value")


def describe(doc: str | None) -> tuple[str, dict[str, str]]:
    """The description (the docstring's first paragraph) and each ``Args:`` line's text by name."""
    text = inspect.cleandoc(doc or "")
    head, _, rest = text.partition("\n\n")
    described: dict[str, str] = {}
    current = None
    inside = False
    for line in rest.splitlines():
        if line.strip() in ("Args:", "Arguments:", "Parameters:"):
            inside = True
            continue
        if inside and line and not line.startswith(" "):
            inside = False  # the next section (Returns:, ...)
        if not inside or not line.strip():
            continue
        found = re.match(r"^\s{2,}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", line)
        if found and (current is None or len(line) - len(line.lstrip()) <= 4):
            current = found.group(1)
            described[current] = found.group(2).strip()
        elif current is not None:
            described[current] = f"{described[current]} {line.strip()}".strip()
    return " ".join(head.split()), described


def _schema_of(function: Callable[..., Any], where: str) -> tuple[Any, dict[str, Any], str]:
    from pydantic import ConfigDict, Field, create_model

    description, described = describe(function.__doc__)
    if not description:
        raise SettingsError(f"{where}: a tool needs a docstring that says what it does")
    hints = inspect.get_annotations(function, eval_str=True)
    fields: dict[str, Any] = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise SettingsError(f"{where}: *{name} cannot be described by a schema; name each parameter")
        if name not in hints:
            raise SettingsError(f"{where}: parameter {name!r} has no type annotation")
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[name] = (hints[name], Field(default, description=described.get(name)))
    unknown = sorted(set(described) - set(fields))
    if unknown:
        raise SettingsError(f"{where}: the docstring describes {', '.join(unknown)}, which it does not take")
    model = create_model(f"{function.__name__}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    schema = model.model_json_schema()
    schema.pop("title", None)
    for spec in schema.get("properties", {}).values():
        spec.pop("title", None)
    schema.setdefault("properties", {})
    schema["additionalProperties"] = False
    return model, schema, description


def tool(
    function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    timeout_s: float = 5.0,
    side_effects: bool = False,
    approval: bool | None = None,
):
    """Register ``function`` as a tool (``@tool`` or ``@tool(timeout_s=..., side_effects=True)``)."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        called = name or function.__name__
        where = f"{function.__module__}.{function.__qualname__}"
        if not NAME.match(called):
            raise SettingsError(f"{where}: tool names are 1-64 letters, digits, _ or -, not {called!r}")
        if timeout_s <= 0:
            raise SettingsError(f"{where}: timeout_s must be above 0, got {timeout_s}")
        model, parameters, description = _schema_of(function, where)
        source = inspect.getsource(function)
        made = Tool(
            name=called,
            function=function,
            description=description,
            parameters=parameters,
            timeout_s=float(timeout_s),
            side_effects=side_effects,
            approval=side_effects if approval is None else approval,
            version=hashlib.sha256(source.encode()).hexdigest()[:12],
            model=model,
        )
        known = _TOOLS.get(called)
        if known is not None and known.function is not function and known.version != made.version:
            raise SettingsError(
                f"{where}: a tool named {called!r} is already registered ({known.function.__module__})"
            )
        _TOOLS[called] = made
        return function

    return register(function) if function is not None else register


def registered() -> dict[str, Tool]:
    """Every tool of the project, by name (the modules of ``MODULES`` imported first)."""
    for module in MODULES:
        importlib.import_module(f"{__package__}.{module}")
    return dict(_TOOLS)


def versions(tools: dict[str, Tool] | None = None) -> dict[str, str]:
    """``{name: version}``: what a run or a trace records of the tools it offered."""
    return {name: item.version for name, item in sorted((tools or registered()).items())}

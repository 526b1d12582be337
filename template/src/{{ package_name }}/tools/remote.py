"""Other MCP servers' tools, offered to the project's agent under its own guardrails.

Each server listed under ``agent.mcp_servers`` in ``params.yaml`` is started once per process
(stdio, the official MCP Python SDK's client; ``python`` as the command is the project's own
interpreter, the working directory the project's root) and kept open. Its tools join the
project's own as ``<server>__<tool>``, with the schema, description and annotations the server
gives, and go through the same loop (``agent.py``): only the tools listed (``tools``: all by
default) are offered; arguments are checked against the server's schema before any call
(``ToolError`` kind ``arguments``, and the server is never asked); a call is bounded by
``timeout_s``, retried, and its output screened for injected instructions like any tool's. A
server's annotations are its own claim: ``approval: unless_read_only`` (the default) has a person
approve every call of a tool the server does not mark ``readOnlyHint``; ``all`` every call;
``none`` none (a server you wrote yourself). A tool's version is the hash of the server's name,
command and the tool's description and schema: a server that changes a tool changes its version
in every run and trace.

A server that cannot be started or listed is a ``SettingsError`` naming it, when the service or
the stage starts.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import threading
from typing import Any

from ..errors import SettingsError
from .registry import Tool

SEPARATOR = "__"  # <server>__<tool>: a name the OpenAI protocol allows (chat/tools.NAME)
_OPEN: dict[str, Connection] = {}
_LOCK = threading.Lock()


class Connection:
    """One MCP server, started and initialised once, its session kept open on a background event
    loop (an anyio blocking portal) that any thread may call through."""

    def __init__(self, name: str, entry: dict[str, Any], root):
        import sys

        from anyio.from_thread import start_blocking_portal
        from mcp.client.stdio import StdioServerParameters, get_default_environment

        command = [sys.executable if part == "python" else str(part) for part in entry["command"]]
        self.name, self.entry = name, entry
        self.where = f"params.yaml: agent.mcp_servers.{name}"
        self.server = StdioServerParameters(
            command=command[0],
            args=command[1:],
            env={**get_default_environment(), **{k: str(v) for k, v in (entry.get("env") or {}).items()}},
            cwd=str(root),
        )
        self._stack = contextlib.ExitStack()
        self.portal = self._stack.enter_context(start_blocking_portal())
        try:
            self.session = self._stack.enter_context(self.portal.wrap_async_context_manager(self._open()))
        except BaseException as error:
            self._stack.close()
            raise SettingsError(
                f"{self.where}: could not start {' '.join(command)}: {_reason(error)}"
            ) from None

    def _open(self):
        import anyio
        from mcp.client.session import ClientSession
        from mcp.client.stdio import stdio_client

        @contextlib.asynccontextmanager
        async def opened():
            async with stdio_client(self.server) as (read, write), ClientSession(read, write) as session:
                with anyio.fail_after(float(self.entry.get("timeout_s", 10))):
                    await session.initialize()
                yield session

        return opened()

    def listed(self) -> list[Any]:
        """The server's tools (every page of ``tools/list``)."""
        import mcp_types as types

        found, cursor = [], None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = self.portal.call(functools.partial(self.session.list_tools, params=params))
            found += page.tools
            cursor = page.next_cursor
            if not cursor:
                return found

    def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """One call: its text, else its structured content; an ``isError`` answer raised."""
        timeout = float(self.entry.get("timeout_s", 10))
        result = self.portal.call(
            functools.partial(self.session.call_tool, tool, arguments, read_timeout_seconds=timeout)
        )
        text = "\n".join(getattr(part, "text", "") or "" for part in result.content or [])
        if result.is_error:
            raise RuntimeError(text or f"{self.name} answered an error")
        structured = getattr(result, "structured_content", None)
        return text if text or structured is None else structured

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the server already gone: nothing left to close
            self._stack.close()


def _reason(error: BaseException) -> str:
    inner = getattr(error, "exceptions", None)  # an exception group from the transport's tasks
    while inner:
        error = inner[0]
        inner = getattr(error, "exceptions", None)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def connect(name: str, entry: dict[str, Any], root) -> Connection:
    """The open connection to server ``name`` (started on first use, closed at exit)."""
    key = json.dumps([name, entry, str(root)], sort_keys=True, default=str)
    with _LOCK:
        if key not in _OPEN:
            _OPEN[key] = Connection(name, entry, root)
        return _OPEN[key]


@atexit.register
def _close_all() -> None:
    for connection in list(_OPEN.values()):
        connection.close()
    _OPEN.clear()


def tools(servers: dict[str, dict[str, Any]] | None, root) -> dict[str, Tool]:
    """Every listed server's tools, as the agent's tools (``<server>__<tool>``)."""
    from ..chat.tools import NAME

    found: dict[str, Tool] = {}
    for server, entry in (servers or {}).items():
        connection = connect(server, entry, root)
        wanted = set(entry.get("tools") or [])
        listed = connection.listed()
        missing = sorted(wanted - {t.name for t in listed})
        if missing:
            raise SettingsError(f"{connection.where}.tools: the server has no tool {', '.join(missing)}")
        for item in listed:
            if wanted and item.name not in wanted:
                continue
            name = f"{server}{SEPARATOR}{item.name}"
            if not NAME.match(name):
                raise SettingsError(f"{connection.where}: {name!r} is not a tool name the protocol allows")
            schema = dict(item.input_schema or {"type": "object", "properties": {}})
            if "properties" in schema and "additionalProperties" not in schema:
                schema["additionalProperties"] = False  # as the service reads a client's tools
            hints = item.annotations
            read_only = bool(hints and hints.read_only_hint)
            rule = entry.get("approval", "unless_read_only")
            description = " ".join((item.description or item.title or item.name).split())
            signed = json.dumps(
                [server, entry["command"], item.name, description, schema], sort_keys=True, default=str
            )
            found[name] = Tool(
                name=name,
                function=_caller(connection, item.name),
                description=description,
                parameters=schema,
                timeout_s=float(entry.get("timeout_s", 10)),
                side_effects=not read_only,
                approval=rule == "all" or (rule == "unless_read_only" and not read_only),
                version=hashlib.sha256(signed.encode()).hexdigest()[:12],
                model=None,
            )
    return found


def _caller(connection: Connection, tool: str):
    def call(**arguments: Any) -> Any:
        return connection.call(tool, arguments)

    return call

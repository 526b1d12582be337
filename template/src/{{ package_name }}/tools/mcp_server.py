"""The project's tools as an MCP server (the official MCP Python SDK), over stdio.

    python -m <package> mcp     # or: make mcp

Any MCP client (an IDE, a desktop assistant, another agent) lists and calls the tools of
``registry.py`` with the schemas their signatures give, each call checked against its schema and
bounded by its timeout (``Tool.call``). A tool's annotations say what it does to the world:
``readOnlyHint`` for a tool without side effects, ``destructiveHint`` for one with them. A tool
that needs a person's approval is not offered here: MCP leaves the decision to the client, and
this project decides it itself, in its own agent (``POST /v1/actions``). A failed call answers
``isError`` with the reason, as the protocol asks, and the server goes on.
"""

from __future__ import annotations

import json
from typing import Any


def offered() -> dict[str, Any]:
    """The tools an MCP client may call: every registered tool that needs no approval."""
    from .registry import registered

    return {name: tool for name, tool in registered().items() if not tool.approval}


def server():
    """The MCP server (``mcp.server.lowlevel.Server``) over the project's tools."""
    import anyio
    import mcp_types as types
    from mcp.server.lowlevel import Server

    from .registry import ToolError

    tools = offered()

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=tool.name,
                    description=tool.description,
                    input_schema=tool.parameters,
                    annotations=types.ToolAnnotations(
                        read_only_hint=not tool.side_effects, destructive_hint=tool.side_effects
                    ),
                )
                for tool in tools.values()
            ]
        )

    async def call_tool(ctx, params) -> types.CallToolResult:
        tool = tools.get(params.name)
        try:
            if tool is None:
                raise ToolError("unknown", f"no tool named {params.name!r} is offered here")
            value = await anyio.to_thread.run_sync(tool.call, dict(params.arguments or {}))
        except ToolError as error:
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=str(error))], is_error=True
            )
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

    from .. import __name__ as package

    return Server(package, on_list_tools=list_tools, on_call_tool=call_tool)


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "mcp").parse_args(argv)
    import anyio
    from mcp.server.stdio import stdio_server

    mcp_server = server()

    async def serve() -> None:
        async with stdio_server() as (read, write):
            await mcp_server.run(read, write, mcp_server.create_initialization_options())

    anyio.run(serve)
    return 0

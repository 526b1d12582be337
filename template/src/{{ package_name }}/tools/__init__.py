"""Tools: typed functions an agent may call, their schemas from their signatures (``registry.py``)."""

# The commands of this phase (python -m <package> COMMAND): module (with a main(argv)) and summary.
COMMANDS = {
    "agent": ("scenarios", "Model Development: the agent on its scenarios, gated by business/kpis.yaml"),
    "mcp": ("mcp_server", "Deployment: the project's tools as an MCP server (stdio)"),
}

"""Continuous Integration: the quality gate of a change against its base branch."""

# The commands of this phase (python -m <package> COMMAND): module (with a main(argv)) and summary.
COMMANDS = {
    "gate": ("gate", "CI: metrics against business/ thresholds and against the base branch"),
    "maturity": ("maturity.cli", "CI: the repository's MLOps/LLMOps maturity from its evidence"),
}

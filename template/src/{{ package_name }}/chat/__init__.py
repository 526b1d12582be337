"""Deployment (D): the application as an OpenAI-compatible chat service behind its guardrails."""

# The commands of this phase (python -m <package> COMMAND): module (with a main(argv)) and summary.
COMMANDS = {
    "serve": ("app", "Deployment: the application as an OpenAI-compatible chat service"),
    "qa": ("qa", "Deployment: QA a running chat service (golden questions, guardrails, load test)"),
}

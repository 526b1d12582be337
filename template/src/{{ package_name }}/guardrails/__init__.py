"""Guardrails: the service's input and output rails, from the policy file, and their gate."""

# The commands of this phase (python -m <package> COMMAND): module (with a main(argv)) and summary.
COMMANDS = {
    "guardrails": ("check", "Guardrails: the policy against the attack and benign sets, gated by business/"),
    "guardrails-review": (
        "review",
        "Cases from the request log and feedback to label into the guardrails sets",
    ),
}

"""Governance: every answer's lineage in an append-only, hash-chained audit trail."""

# The commands of this phase (python -m <package> COMMAND): module (with a main(argv)) and summary.
COMMANDS = {
    "audit": ("audit", "Governance: verify the audit trail, or export its records for an auditor"),
}

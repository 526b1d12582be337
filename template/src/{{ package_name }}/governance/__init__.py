"""Governance: every answer's lineage in a hash-chained audit trail, and the model card of a release."""

# The commands of this phase (python -m <package> COMMAND): module (with a main(argv)) and summary.
COMMANDS = {
    "audit": ("audit", "Governance: verify the audit trail, or export its records for an auditor"),
    "model-card": ("card", "Governance: the model card of a registered version (business/compliance.yaml)"),
}

"""Monitoring: data drift of production inputs, and the retraining trigger."""

# The commands of this phase (python -m <package> COMMAND): module (with a main(argv)) and summary.
COMMANDS = {
    "drift": ("drift", "Monitoring: data drift of production inputs against training data"),
}

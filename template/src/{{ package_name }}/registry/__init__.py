"""Version Control of models: MLflow tracking, registration and promotion."""

# The commands of this phase (python -m <package> COMMAND): module (with a main(argv)) and summary.
COMMANDS = {
    "promote": ("promote", "Version Control: move the champion alias to a passing challenger"),
}

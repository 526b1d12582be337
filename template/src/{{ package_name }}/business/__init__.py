"""Business Needs: the team behind the project (``business/roles.yaml``) and what it costs."""

# The commands of this phase (python -m <package> COMMAND): module (with a main(argv)) and summary.
COMMANDS = {
    "roles": ("roles", "Business Needs: .github/CODEOWNERS from business/roles.yaml (--check: agree?)"),
    "cost": ("cost", "Business Needs: the monthly cost estimate per phase and per role"),
}

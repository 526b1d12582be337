"""Command line: `python -m <package> <command>`, one command per lifecycle step.

DVC stages, the Makefile and CI all call these same commands. Heavy libraries are
imported by the command that needs them, so `--help` and light commands stay fast.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "collect": ("data.collect", "Data Collection: fetch the raw dataset"),
    "profile": ("data.profile", "First run: column roles, data contract and business defaults from the data"),
    "validate": ("data.validate", "Data Preparation: check raw data against the expectation suite"),
    "suite": ("data.suite", "Write the expectation suite profiled from the current raw data"),
    "prepare": ("data.prepare", "Data Preparation: clean and split into train/test"),
    "train": ("training.train", "Model Development: fit the model"),
    "evaluate": ("training.evaluate", "Model Development: test-split metrics, business gate, MLflow"),
    "plots": (
        "training.plots",
        "Model Development: evaluation plots as one offline page (reports/plots.html)",
    ),
    "gate": ("training.compare", "CI: metrics against business/ thresholds and against the base branch"),
    "promote": ("registry.promote", "Version Control: move the champion alias to a passing challenger"),
    "package": ("deployment.package", "Deployment: gather the model and its signature for the serving image"),
    "serve": ("deployment.app", "Deployment: run the HTTP prediction service"),
    "score": ("deployment.batch", "Deployment: batch-score a CSV file"),
    "qa": ("deployment.qa", "Deployment: QA a running service (requests, load test, responsible AI)"),
    "fairness": ("deployment.fairness", "Responsible AI: group metrics of the sensitive feature"),
    "drift": ("monitoring.drift", "Monitoring: data drift of production inputs against training data"),
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch to ``<module>.main(args)``; each command parses its own options (``--help``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        width = max(map(len, COMMANDS))
        lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
        print(f"usage: python -m {__package__} COMMAND [options]\n\ncommands:\n" + "\n".join(lines))
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    command, rest = argv[0], argv[1:]
    module = importlib.import_module(f"{__package__}.{COMMANDS[command][0]}")
    from .errors import GateError

    try:
        return module.main(rest) or 0
    except GateError as error:
        print(f"\n{command} FAILED: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

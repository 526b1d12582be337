"""Command line: `python -m <package> <command>`, one command per lifecycle step.

DVC stages, the Makefile and CI all call these same commands. Heavy libraries are
imported by the command that needs them, so `--help` and light commands stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "collect": ("data.collect", "Data Collection: fetch the raw dataset"),
    "validate": ("data.validate", "Data Preparation: check raw data against the expectation suite"),
    "suite": ("data.suite", "Write the expectation suite profiled from the current raw data"),
    "prepare": ("data.prepare", "Data Preparation: clean and split into train/test"),
    "train": ("training.train", "Model Development: fit the model and track the run in MLflow"),
    "evaluate": ("training.evaluate", "Evaluate on the test split, apply the business gate, register"),
    "promote": ("registry.promote", "Version Control: move the champion alias to a passing challenger"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=__package__, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text)
    args = parser.parse_args(argv)
    module = importlib.import_module(f"{__package__}.{COMMANDS[args.command][0]}")
    from .errors import GateError

    try:
        return module.main() or 0
    except GateError as error:
        print(f"\n{args.command} FAILED: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

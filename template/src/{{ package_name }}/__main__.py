"""Command line: `python -m <package> <command>`, one command per lifecycle step.

DVC stages, the Makefile and CI all call these same commands. Heavy libraries are
imported by the command that needs them, so `--help` and light commands stay fast.
"""

from __future__ import annotations

import importlib
import sys

# The lifecycle's phases in order; each phase package lists its own commands (``COMMANDS`` in its
# ``__init__.py``), so a profile adds commands by adding a phase package here.
PHASES = ("data", "training", "registry", "deployment", "monitoring")


def commands() -> dict[str, tuple[str, str]]:
    """``{command: (module under the package, summary)}``, in lifecycle order."""
    found: dict[str, tuple[str, str]] = {}
    for phase in PHASES:
        for name, (module, text) in importlib.import_module(f"{__package__}.{phase}").COMMANDS.items():
            if name in found:
                raise RuntimeError(f"command '{name}' is declared by two phases: {found[name][0]}, {phase}")
            found[name] = (f"{phase}.{module}", text)
    return found


def main(argv: list[str] | None = None) -> int:
    """Dispatch to ``<module>.main(args)``; each command parses its own options (``--help``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    known = commands()
    if not argv or argv[0] not in known:
        width = max(map(len, known))
        lines = [f"  {name:<{width}}  {text}" for name, (_, text) in known.items()]
        print(f"usage: python -m {__package__} COMMAND [options]\n\ncommands:\n" + "\n".join(lines))
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    command, rest = argv[0], argv[1:]
    module = importlib.import_module(f"{__package__}.{known[command][0]}")
    from .errors import GateError

    try:
        return module.main(rest) or 0
    except GateError as error:
        print(f"\n{command} FAILED: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

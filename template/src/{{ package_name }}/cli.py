"""Argument parsing shared by the commands of ``python -m <package>``."""

from __future__ import annotations

import argparse


def parser(doc: str | None, command: str) -> argparse.ArgumentParser:
    """A parser for one command, described by the first line of its module docstring."""
    return argparse.ArgumentParser(
        prog=f"python -m {__package__} {command}",
        description=(doc or command).strip().splitlines()[0],
    )

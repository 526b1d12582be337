"""Whether ``uv.lock`` still holds what ``pyproject.toml`` asks for: what ``make`` checks before a
target runs, so that a dependency added by ``copier update`` or by hand is locked and installed
(``make setup``) before a command needs it, instead of an import error halfway through.

Prints one line naming the requirements the lock lacks and what to do, and exits 1; silent when
the lock matches (or when there is no lock yet: ``make setup`` writes it). The project's own
requirements are compared by name, extras and version specifiers, per group and extra.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def _key(name: str, extras, specifier: str) -> tuple[str, frozenset[str], frozenset[str]]:
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name

    return (
        canonicalize_name(name),
        frozenset(canonicalize_name(extra) for extra in extras or ()),
        frozenset(str(s) for s in SpecifierSet(specifier or "")),
    )


def asked(pyproject: dict) -> dict[str, set]:
    """What ``pyproject.toml`` asks for: ``{group: {key}}`` (``""``: the dependencies; extras and
    dependency groups by name)."""
    from packaging.requirements import Requirement

    project = pyproject.get("project", {})
    groups = {"": project.get("dependencies", [])}
    groups |= {f"extra {name}": deps for name, deps in project.get("optional-dependencies", {}).items()}
    groups |= {f"group {name}": deps for name, deps in pyproject.get("dependency-groups", {}).items()}
    wanted = {}
    for group, entries in groups.items():
        requirements = [Requirement(entry) for entry in entries if isinstance(entry, str)]
        wanted[group] = {_key(r.name, r.extras, str(r.specifier)) for r in requirements}
    return wanted


def project_entry(lock_text: str, name: str) -> dict:
    """The project's own ``[[package]]`` entry of ``uv.lock``, read alone (the whole lock of an LLM
    project takes a third of a second to parse, on every ``make``)."""
    from packaging.utils import canonicalize_name

    for block in lock_text.split("\n[[package]]\n")[1:]:
        first = block.split("\n", 1)[0]
        if first.startswith("name = ") and canonicalize_name(first[7:].strip('"')) == canonicalize_name(name):
            return tomllib.loads("[[package]]\n" + block)["package"][0]
    return {}


def locked(root: dict) -> dict[str, set]:
    """What ``uv.lock`` was resolved for (the project's entry), in the groups of ``asked``."""
    from packaging.markers import Marker

    metadata = root.get("metadata", {})
    groups: dict[str, set] = {"": set()}
    for entry in metadata.get("requires-dist", []):
        group = ""
        marker = entry.get("marker")
        if marker:  # an extra's requirement: marker "extra == 'cpu'" (and maybe more)
            extra = next((v for k, _, v in _leaves(Marker(marker)) if k == "extra"), None)
            group = f"extra {extra}" if extra else ""
        groups.setdefault(group, set()).add(_key(entry["name"], entry.get("extras"), entry.get("specifier")))
    for group, entries in metadata.get("requires-dev", {}).items():
        groups[f"group {group}"] = {_key(e["name"], e.get("extras"), e.get("specifier")) for e in entries}
    return groups


def _leaves(marker) -> list[tuple[str, str, str]]:
    """``(variable, op, value)`` of every comparison in ``marker``."""
    found = []

    def walk(node) -> None:
        if isinstance(node, list):
            for part in node:
                walk(part)
        elif isinstance(node, tuple) and len(node) == 3:
            found.append(tuple(str(getattr(side, "value", side)) for side in node))

    walk(marker._markers)  # noqa: SLF001 (packaging keeps the parsed marker there)
    return found


def missing(root: Path) -> list[str]:
    """The requirements of ``pyproject.toml`` that ``uv.lock`` was not resolved for."""
    lock_file = root / "uv.lock"
    if not lock_file.is_file():
        return []
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    name = pyproject.get("project", {}).get("name", "")
    have = locked(project_entry(lock_file.read_text(encoding="utf-8"), name))
    lacking = []
    for group, wanted in asked(pyproject).items():
        for name, extras, specifier in sorted(wanted - have.get(group, set())):
            shown = name + (f"[{','.join(sorted(extras))}]" if extras else "") + ",".join(sorted(specifier))
            lacking.append(shown + (f" ({group})" if group else ""))
    return lacking


def main(argv: list[str] | None = None) -> int:
    try:
        lacking = missing(Path.cwd())
    except (ImportError, OSError, ValueError, KeyError):  # nothing to compare with: let uv say
        return 0
    if not lacking:
        return 0
    more = f" and {len(lacking) - 3} more" if len(lacking) > 3 else ""
    print(
        f"uv.lock does not match pyproject.toml (it lacks {', '.join(lacking[:3])}{more}), after a "
        "template update or an edit: run make setup"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())

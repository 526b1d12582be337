"""The package names a generated project must not take: every standard-library module and every
top-level module its dependencies install (a package named ``logging`` or ``fastapi`` would shadow
them). Usage: ``python scripts/reserved_names.py VENV [VENV ...]`` prints the list (one venv per
profile: their dependencies differ); ``--write`` puts it in copier.yml (between the ``reserved-names`` markers). ``tests/test_lifecycle.py`` checks that the
list covers a generated project's real environment.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

COPIER = Path(__file__).resolve().parents[1] / "copier.yml"
MARKER = re.compile(r"(\{#- reserved-names: begin #\}\n)(.*?)(\n?\s*\{#- reserved-names: end #\})", re.DOTALL)
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def installed_modules(venv: Path) -> set[str]:
    """Top-level importable names of every distribution in ``venv``."""
    site = next(venv.glob("lib/python3*/site-packages"))
    names: set[str] = set()
    for dist in metadata.distributions(path=[str(site)]):
        top = dist.read_text("top_level.txt")
        if top:
            names.update(line.strip() for line in top.splitlines() if line.strip())
            continue
        for file in dist.files or []:
            first = file.parts[0]
            if first.endswith((".dist-info", ".data")) or first in ("..", "__pycache__", "bin"):
                continue
            names.add(first.removesuffix(".py") if len(file.parts) == 1 else first)
    return {n.split(".")[0] for n in names}


def reserved(*venvs: Path) -> list[str]:
    names = set(sys.stdlib_module_names).union(*(installed_modules(venv) for venv in venvs))
    return sorted(
        n for n in (name.lower() for name in names) if IDENTIFIER.match(n) and not n.startswith("_")
    )


def main() -> int:
    names = reserved(*(Path(arg) for arg in sys.argv[1:] if not arg.startswith("--")))
    if "--write" in sys.argv:
        text = COPIER.read_text()
        line = "    {%- set reserved = " + repr(names).replace("'", '"') + " %}"
        COPIER.write_text(MARKER.sub(lambda m: m[1] + line + "\n" + m[3].lstrip("\n"), text, count=1))
        print(f"{len(names)} reserved names written to {COPIER.name}")
    else:
        print("\n".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())

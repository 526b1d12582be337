"""The team: ``business/roles.yaml``, the one source of ``.github/CODEOWNERS`` and of the
production environment's reviewers.

    python -m <package> roles            # write .github/CODEOWNERS from the roles (make roles)
    python -m <package> roles --check    # exit 1 when .github/CODEOWNERS says otherwise

Each role of the framework (Table III) the team has lists its ``owners`` (GitHub handles), the
paths it ``owns`` (as CODEOWNERS writes them), its ``people`` and ``monthly_wage_usd`` (the cost
estimate, ``cost.py``). A path owned by several roles gets the owners of all of them, on one line,
in the order the roles come; ``*`` (the default owner) comes first. ``production_reviewers`` are
the users and org/team slugs ``make github-setup`` makes the production environment wait for.
A misspelt role or key, a handle without its ``@``, or more than 6 reviewers is an error naming it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROLES_FILE = "business/roles.yaml"
CODEOWNERS = ".github/CODEOWNERS"
HANDLE = r"^@[A-Za-z0-9](-?[A-Za-z0-9]){0,38}(/[A-Za-z0-9][A-Za-z0-9._-]*)?$"
REVIEWER = r"^[A-Za-z0-9](-?[A-Za-z0-9]){0,38}(/[A-Za-z0-9][A-Za-z0-9._-]*)?$"
# The framework's roles (Table III) and the lifecycle phases each takes part in: BN business needs,
# AS administrative setup, MD model development (MDT traditional, MDL LLM), DT development and
# testing, VC version control, D deployment, M monitoring.
PHASES = {
    "business_analyst": ("BN", "M"),
    "system_administrator": ("AS", "VC", "D", "M"),
    "network_administrator": ("AS", "VC", "D", "M"),
    "data_architect": ("BN", "MD", "M"),
    "data_engineer": ("BN", "MD", "M"),
    "data_scientist": ("BN", "MD", "M"),
    "ml_engineer": ("MD", "D", "M"),
    "prompt_engineer": ("MDL", "D", "M"),
    "software_engineer": ("AS", "MD", "VC", "D", "M"),
    "qa_engineer": ("DT", "VC"),
    "mlops_engineer": ("AS", "MD", "VC", "D", "M"),
    "devops_engineer": ("AS", "MD", "VC", "D", "M"),
    "security_officer": ("BN", "AS", "MD", "VC", "D", "M"),
}


def _model():
    from pydantic import BaseModel, ConfigDict, Field, field_validator

    strict = ConfigDict(extra="forbid")

    class Role(BaseModel):
        model_config = strict
        owners: list[str] = []
        people: int = Field(ge=0)
        monthly_wage_usd: float = Field(ge=0)
        owns: list[str] = []

        @field_validator("owners")
        @classmethod
        def handles(cls, owners: list[str]) -> list[str]:
            bad = [o for o in owners if not re.match(HANDLE, o)]
            if bad:
                raise ValueError(f"{bad[0]!r} is not a GitHub handle (@user or @org/team)")
            return owners

    class Team(BaseModel):
        model_config = strict
        roles: dict[str, Role]
        production_reviewers: list[str] = Field(min_length=1, max_length=6)

        @field_validator("roles")
        @classmethod
        def known(cls, roles: dict[str, Any]) -> dict[str, Any]:
            unknown = sorted(set(roles) - set(PHASES))
            if unknown:
                raise ValueError(f"unknown role {unknown[0]!r}; the framework's roles: {', '.join(PHASES)}")
            for name, role in roles.items():
                if role.owns and not role.owners:
                    raise ValueError(f"{name} owns {role.owns[0]} but has no owners")
            return roles

        @field_validator("production_reviewers")
        @classmethod
        def reviewers(cls, names: list[str]) -> list[str]:
            bad = [n for n in names if not re.match(REVIEWER, n)]
            if bad:
                raise ValueError(f"{bad[0]!r}: users or org/team slugs, without @")
            return names

    return Team


def load(root: Path) -> dict[str, Any]:
    """``business/roles.yaml`` checked: ``{"roles": {name: {...}}, "production_reviewers": [...]}``."""
    import yaml

    from ..errors import SettingsError
    from ..settings import checked

    file = root / ROLES_FILE
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"{ROLES_FILE} is missing: the team's roles (see business/README.md)") from None
    return checked(_model(), raw, ROLES_FILE).model_dump()


def codeowners(team: dict[str, Any]) -> str:
    """``.github/CODEOWNERS`` as the roles say: one line per path, its owners those of every role
    that owns it; ``*`` first (the default), the rest in the order they first appear."""
    owners: dict[str, list[str]] = {}
    for role in team["roles"].values():
        for path in role["owns"]:
            handles = owners.setdefault(path, [])
            handles += [h for h in role["owners"] if h not in handles]
    order = sorted(owners, key=lambda path: path != "*")  # stable: the rest keep their order
    width = max((len(p) for p in order), default=0) + 2
    lines = [
        f"# Written by `make roles` from {ROLES_FILE} (the last matching line wins): edit that file.",
        "# `make github-setup` makes a code owner's review required on main.",
    ]
    lines += [f"{path:<{width}}{' '.join(owners[path])}".rstrip() for path in order]
    return "\n".join(lines) + "\n"


def reviewers(root: Path) -> list[str]:
    """The production environment's required reviewers."""
    return list(load(root)["production_reviewers"])


def main(argv: list[str] | None = None) -> int:
    import sys

    from ..cli import parser
    from ..config import project_root

    options = parser(__doc__, "roles")
    options.add_argument("--check", action="store_true", help=f"exit 1 when {CODEOWNERS} disagrees")
    args = options.parse_args(argv)
    root = project_root()
    wanted = codeowners(load(root))
    file = root / CODEOWNERS
    current = file.read_text(encoding="utf-8") if file.is_file() else ""
    if args.check:
        if current != wanted:
            print(f"{CODEOWNERS} does not follow {ROLES_FILE}: run make roles and commit it", file=sys.stderr)
            return 1
        print(f"{CODEOWNERS} follows {ROLES_FILE}")
        return 0
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(wanted, encoding="utf-8")
    print(f"{CODEOWNERS} written from {ROLES_FILE} ({wanted.count(chr(10)) - 2} paths)")
    return 0

"""Column roles: which columns the model learns from, kept in ``paths.columns``: the raw data's
columns and those your own code adds (``derive`` in ``data/prepare.py``).

The first run profiles them from the data (the ``profile`` stage) and writes a commented YAML file
for you to review and edit; later runs read it. Roles:

- ``feature``: the model learns from it (numbers are imputed and scaled, text is one-hot encoded);
- ``date``: parsed and turned into year, month, day-of-week and day-of-year features;
- ``id``, ``index``, ``constant``, ``text``, ``ignore``: left out of the features. The service and
  batch scoring still accept these columns (and the target) in a row, and ignore them.

The target (``data.target`` in params.yaml) is never listed: it is the label, not an input.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..config import parse_yaml, shown
from ..errors import SettingsError

FEATURE, DATE = "feature", "date"
LEFT_OUT = ("id", "index", "constant", "text", "ignore")
ROLES = (FEATURE, DATE, *LEFT_OUT)
MAX_CATEGORY_SHARE = 0.5  # a text column with more distinct values than this share of rows is free text
MOSTLY_EMPTY = 0.8  # so is a text column empty in this share of rows
ID_NAME = re.compile(r"(^|[^a-z])(id|uuid|guid|key|identifier)$|^(id|uuid)[^a-z]", re.IGNORECASE)
INDEX_NAME = re.compile(r"^(unnamed: ?\d+|index|row|rownames|\.\.\.1)?$", re.IGNORECASE)


class RolesError(SettingsError):
    """The column roles file does not fit the data; the message says what to change."""


_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
DATE_SHAPE = "|".join(
    [
        r"\d{1,4}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,4}",  # 2024-03-06, 06/03/2024, 6.3.24
        r"\b" + _MONTH + r",?\s+" + _DAY + r",?\s+\d{2,4}\b",  # Aug 22 2024, September 3rd, 2021
        r"\b" + _DAY + r"\s+" + _MONTH + r",?\s+\d{2,4}\b",  # 22 Aug 2024
    ]
)


def _looks_like_dates(values) -> bool:
    """Most non-empty values parse as dates (and the column is not plain numbers)."""
    import warnings

    import pandas as pd

    sample = values.dropna().astype(str).head(200)
    if sample.empty or pd.to_numeric(sample, errors="coerce").notna().mean() > 0.5:
        return False
    # Shaped like dates (2024-03-06, 06/03/2024, Aug 22 2024, 22 August 2024), so that free text
    # dateutil happens to parse ("may", "march on") is not taken for one; mixed formats are fine.
    shaped = sample.str.contains(DATE_SHAPE, regex=True, case=False)
    if shaped.mean() < 0.9:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= 0.9)


def infer_role(name: str, values) -> tuple[str, str]:
    """``(role, reason)`` of one column, from its name and values."""
    from pandas.api import types

    present = values.dropna()
    rows, distinct = len(values), present.nunique()
    numeric = types.is_numeric_dtype(values) and not types.is_bool_dtype(values)
    if distinct <= 1:
        shown = repr(present.iloc[0]) if distinct else "empty"
        return "constant", f"one value only ({shown})"
    if INDEX_NAME.match(str(name)) and numeric and distinct == len(present):
        return "index", "unnamed row number (written by pandas or R)"
    unique = distinct == len(present) and len(present) >= 0.9 * rows
    integral = numeric and bool((present == present.round()).all())
    if integral and unique and present.is_monotonic_increasing and (present.diff().dropna() == 1).all():
        return "index", "consecutive row numbers"
    if ID_NAME.search(str(name)) and distinct >= 0.9 * len(present) and (integral or not numeric):
        return "id", "an identifier: a different value in almost every row"
    if numeric:
        return FEATURE, "numeric"
    if types.is_bool_dtype(values):
        return FEATURE, "true/false"
    if _looks_like_dates(values):
        return DATE, "dates: year, month, day of week and day of year become features"
    if unique:
        return "id", "a different text value in every row"
    empty = 1 - len(present) / rows if rows else 0
    if distinct > MAX_CATEGORY_SHARE * len(present) or empty >= MOSTLY_EMPTY:
        return "text", f"free text ({distinct} distinct values, {empty:.0%} empty)"
    return FEATURE, f"categorical ({distinct} values)"


def infer(frame, target: str) -> dict[str, tuple[str, str]]:
    """``{column: (role, reason)}`` for every column of ``frame`` but the target."""
    return {str(c): infer_role(str(c), frame[c]) for c in frame.columns if str(c) != target}


def to_yaml(roles: dict[str, tuple[str, str]], source: str) -> str:
    """The roles as the commented YAML file the user reviews."""
    import yaml

    lines = [
        f"# Column roles of {source}: which columns the model learns from.",
        "# Profiled from the data on the first run; yours to review and edit, then `make repro`.",
        "#   feature   the model learns from it",
        "#   date      year, month, day of week and day of year become features",
        "#   id, index, constant, text, ignore: left out of the features (the service and batch",
        "#             scoring still accept them in a row, and ignore them)",
        "# The target (params.yaml: data.target) is not listed; the columns derive in data/prepare.py",
        "# adds are. Delete this file to profile again.",
        "columns:",
    ]
    width = max((len(yaml.safe_dump({n: r[0]}).strip()) for n, r in roles.items()), default=0)
    for name, (role, reason) in roles.items():
        entry = yaml.safe_dump({name: role}, allow_unicode=True, width=1000).strip()
        lines.append(f"  {entry:<{width}}  # {reason}")
    return "\n".join(lines) + "\n"


def read(file: Path) -> dict[str, str]:
    """``{column: role}`` from ``file``; a role that is not one of ``ROLES`` is an error."""
    import yaml

    try:
        loaded = parse_yaml(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise RolesError(f"{shown(file)} is not valid YAML: {error}") from None
    columns = loaded.get("columns") if isinstance(loaded, dict) else None
    if not isinstance(columns, dict):
        raise RolesError(f"{shown(file)}: expected a 'columns:' mapping of column name to role")
    roles = {}
    for name, role in columns.items():
        if role not in ROLES:
            raise RolesError(f"{shown(file)}: columns.{name}: use one of {', '.join(ROLES)}, not {role!r}")
        roles[str(name)] = role
    return roles


def check(roles: dict[str, str], columns, target: str, file: Path) -> None:
    """Every data column but the target has a role, and every listed column exists."""
    columns = [str(c) for c in columns]
    unlisted = [c for c in columns if c not in roles and c != target]
    unknown = [c for c in roles if c not in columns and c != target]
    problems = []
    if unlisted:
        problems.append(
            f"add {', '.join(map(repr, unlisted))} with a role (or delete the file to profile again)"
        )
    if unknown:
        problems.append(f"{', '.join(map(repr, unknown))} listed but not in the data: remove them")
    if target in roles:
        problems.append(
            f"the target {target!r} must not be listed (if data.target changed in params.yaml, remove it "
            "here and give the old target a role, or delete the file to profile again)"
        )
    if problems:
        raise RolesError(f"{shown(file)}: " + "; ".join(problems))
    if not any(role in (FEATURE, DATE) for role in roles.values()):
        raise RolesError(
            f"{shown(file)}: no column has the role feature or date: the model has nothing to learn from"
        )


def features(roles: dict[str, str]) -> list[str]:
    """The model's input columns, in file order (features and dates)."""
    return [name for name, role in roles.items() if role in (FEATURE, DATE)]


def dates(roles: dict[str, str]) -> list[str]:
    return [name for name, role in roles.items() if role == DATE]


def left_out(roles: dict[str, str]) -> list[str]:
    return [name for name, role in roles.items() if role in LEFT_OUT]


def load(params: dict[str, Any], columns=None) -> dict[str, str]:
    """The project's column roles (``paths.columns``), checked against ``columns`` when given."""
    from ..config import path

    file = path(params, "columns")
    if not file.is_file():
        raise RolesError(
            f"{params['paths']['columns']} is missing: run the pipeline (make repro) to profile it"
        )
    roles = read(file)
    if columns is not None:
        check(roles, columns, params["data"]["target"], file)
    return roles

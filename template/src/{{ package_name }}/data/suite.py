"""The expectation suite: a reviewable JSON file profiled from reference data.

The first run writes it from the raw data (the ``profile`` stage) when ``paths.suite`` is missing;
`python -m <package> suite` (``make suite``) rewrites it from the current raw data, e.g. to accept
a legitimate change such as a new column or a new class, and says what the new contract accepts
that the old one did not (a column that was numbers and is not any more, a wider range, new values,
more missing values). Review the diff before committing it: the suite is the data contract every
later batch must meet.

It is written for data that grows: IDs, row indexes, dates and free text get no value sets or
ranges; numeric ranges are widened (a quarter of the observed range plus a tenth of the value on
each side, never below zero for a column that was never negative) so next year's values and the
next row number pass; unlabelled rows are allowed (preparation leaves them out).
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..config import load_params, path, project_root
from ..expectations import IN_SET, NOT_NULL, RANGE
from . import roles as column_roles
from .table import read

MARGIN = 0.1  # share of missing values tolerated above what the reference data had
RANGE_PAD, VALUE_PAD = 0.25, 0.1
MAX_CATEGORIES = 20


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _expect(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs}


def _completeness(column: str, values) -> dict[str, Any]:
    present = float(values.notna().mean())
    if present == 1.0:
        return _expect(NOT_NULL, column=column)
    return _expect(NOT_NULL, column=column, mostly=_round(max(0.0, present - MARGIN)))


def _range(column: str, observed) -> dict[str, Any]:
    low, high = float(observed.min()), float(observed.max())
    pad = (high - low) * RANGE_PAD
    lower, upper = low - max(pad, VALUE_PAD * abs(low)), high + max(pad, VALUE_PAD * abs(high))
    lower = 0.0 if low >= 0 and lower < 0 else _round(lower)
    return _expect(RANGE, column=column, min_value=lower, max_value=_round(upper))


def build_suite(frame, target: str, task: str, roles: dict[str, str] | None = None, name: str = "raw"):
    """Profile ``frame`` into a suite: schema, completeness, ranges and label sets, by column role
    (``roles``: ``{column: role}``; inferred from the data when not given)."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if roles is None:
        roles = {column: role for column, (role, _) in column_roles.infer(frame, target).items()}
    rows = len(frame)
    expectations = [
        _expect(
            "expect_table_columns_to_match_set",
            column_set=sorted(map(str, frame.columns)),
            exact_match=True,
        ),
        _expect("expect_table_row_count_to_be_between", min_value=max(1, math.ceil(rows / 2))),
    ]
    for column in sorted(map(str, frame.columns)):
        values = frame[column]
        observed = values.dropna()
        numeric = is_numeric_dtype(values) and not is_bool_dtype(values)
        role = "target" if column == target else roles.get(column, column_roles.FEATURE)
        if role == "target":  # unlabelled rows are allowed: no completeness check
            if task == "classification":
                labels = sorted(observed.unique().tolist(), key=str)
                expectations.append(_expect(IN_SET, column=column, value_set=labels))
            elif numeric and len(observed):
                expectations.append(_range(column, observed))
            continue
        if role in ("text", "constant", "ignore"):
            continue
        expectations.append(_completeness(column, values))
        if role != column_roles.FEATURE or not len(observed):
            continue
        if numeric:
            expectations.append(_range(column, observed))
        elif observed.nunique() <= MAX_CATEGORIES:
            labels = sorted(observed.unique().tolist(), key=str)
            # mostly: a new category now and then is not a broken batch (the encoder ignores it)
            expectations.append(_expect(IN_SET, column=column, value_set=labels, mostly=0.95))
    return {"name": name, "expectations": expectations}


def _columns(suite: dict[str, Any]) -> set[str]:
    for item in suite.get("expectations", []):
        if item["type"] == "expect_table_columns_to_match_set":
            return set(item["kwargs"]["column_set"])
    return set()


def _by_column(suite: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{column: {expectation type: kwargs}}``."""
    checks: dict[str, dict[str, dict[str, Any]]] = {}
    for item in suite.get("expectations", []):
        if "column" in item["kwargs"]:
            checks.setdefault(item["kwargs"]["column"], {})[item["type"]] = item["kwargs"]
    return checks


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What ``new`` accepts that ``old`` did not, one line per change, for the review of ``make suite``."""
    from ..errors import shorten

    lines = []
    for label, names in (
        ("new columns", _columns(new) - _columns(old)),
        ("columns gone", _columns(old) - _columns(new)),
    ):
        if names:
            lines.append(f"{label}: {shorten(', '.join(map(repr, sorted(names))), 200)}")
    before, after = _by_column(old), _by_column(new)
    for column in sorted(set(before) & _columns(new)):
        was, now = before[column], after.get(column, {})
        old_range, new_range = was.get(RANGE), now.get(RANGE)
        if old_range and not new_range:
            lines.append(
                f"{column!r}: was numbers from {old_range['min_value']} to {old_range['max_value']}, "
                "now no range at all: does it hold text?"
            )
        elif old_range and (old_range["min_value"], old_range["max_value"]) != (
            new_range["min_value"],
            new_range["max_value"],
        ):
            lines.append(
                f"{column!r}: range {old_range['min_value']} to {old_range['max_value']} -> "
                f"{new_range['min_value']} to {new_range['max_value']}"
            )
        old_set, new_set = was.get(IN_SET), now.get(IN_SET)
        if old_set and not new_set:
            lines.append(f"{column!r}: no longer a closed list of values")
        elif old_set:
            added = [value for value in new_set["value_set"] if value not in old_set["value_set"]]
            if added:
                lines.append(f"{column!r}: new values {shorten(', '.join(map(repr, added)), 120)}")
        old_nulls, new_nulls = was.get(NOT_NULL), now.get(NOT_NULL)
        if old_nulls and (not new_nulls or new_nulls.get("mostly", 1) < old_nulls.get("mostly", 1)):
            allowed = f"{1 - new_nulls.get('mostly', 1):.0%}" if new_nulls else "any share"
            lines.append(f"{column!r}: more missing values allowed ({allowed})")
    return lines


def write_suite(suite: dict[str, Any], target) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(suite, indent=2) + "\n", encoding="utf-8")


def raw_roles(params: dict[str, Any], frame) -> dict[str, str]:
    """The roles of the raw ``frame``'s columns, the roles file checked against them and the features
    ``prepare.derive`` adds (which the raw data's contract does not hold)."""
    from .prepare import checked_roles

    return {column: role for column, role in checked_roles(params, frame).items() if column in frame.columns}


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "suite").parse_args(argv)

    params, root = load_params(), project_root()
    frame = read(path(params, "raw"), params)
    target = params["data"]["target"]
    suite = build_suite(frame, target, params["task"], raw_roles(params, frame))
    out = path(params, "suite")
    old = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else None
    write_suite(suite, out)
    print(f"wrote {len(suite['expectations'])} expectations -> {out.relative_to(root)}; review and commit it")
    if old is not None:
        found = changes(old, suite)
        print(
            "what it accepts that the old contract did not:" if found else "the contract accepts nothing new"
        )
        for line in found:
            print(f"  - {line}")
    return 0

"""The expectation suite: a reviewable JSON file profiled from reference data.

The first run writes it from the raw data (the ``profile`` stage) when ``paths.suite`` is missing;
`python -m <package> suite` (``make suite``) rewrites it from the current raw data, e.g. to accept
a legitimate change such as a new column or a new class. Review the diff before committing it: the
suite is the data contract every later batch must meet.

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
from . import roles as column_roles

MARGIN = 0.1  # share of missing values tolerated above what the reference data had
RANGE_PAD, VALUE_PAD = 0.25, 0.1
MAX_CATEGORIES = 20


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _expect(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": f"expect_{kind}", "kwargs": kwargs}


def _completeness(column: str, values) -> dict[str, Any]:
    present = float(values.notna().mean())
    if present == 1.0:
        return _expect("column_values_to_not_be_null", column=column)
    return _expect("column_values_to_not_be_null", column=column, mostly=_round(max(0.0, present - MARGIN)))


def _range(column: str, observed) -> dict[str, Any]:
    low, high = float(observed.min()), float(observed.max())
    pad = (high - low) * RANGE_PAD
    lower, upper = low - max(pad, VALUE_PAD * abs(low)), high + max(pad, VALUE_PAD * abs(high))
    lower = 0.0 if low >= 0 and lower < 0 else _round(lower)
    return _expect("column_values_to_be_between", column=column, min_value=lower, max_value=_round(upper))


def build_suite(frame, target: str, task: str, roles: dict[str, str] | None = None, name: str = "raw"):
    """Profile ``frame`` into a suite: schema, completeness, ranges and label sets, by column role
    (``roles``: ``{column: role}``; inferred from the data when not given)."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if roles is None:
        roles = {column: role for column, (role, _) in column_roles.infer(frame, target).items()}
    rows = len(frame)
    expectations = [
        _expect("table_columns_to_match_set", column_set=sorted(map(str, frame.columns)), exact_match=True),
        _expect("table_row_count_to_be_between", min_value=max(1, math.ceil(rows / 2))),
    ]
    for column in sorted(map(str, frame.columns)):
        values = frame[column]
        observed = values.dropna()
        numeric = is_numeric_dtype(values) and not is_bool_dtype(values)
        role = "target" if column == target else roles.get(column, column_roles.FEATURE)
        if role == "target":  # unlabelled rows are allowed: no completeness check
            if task == "classification":
                labels = sorted(observed.unique().tolist(), key=str)
                expectations.append(_expect("column_values_to_be_in_set", column=column, value_set=labels))
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
            expectations.append(
                _expect("column_values_to_be_in_set", column=column, value_set=labels, mostly=0.95)
            )
    return {"name": name, "expectations": expectations}


def write_suite(suite: dict[str, Any], target) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(suite, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "suite").parse_args(argv)
    import pandas as pd

    params, root = load_params(), project_root()
    frame = pd.read_csv(path(params, "raw"))
    target = params["data"]["target"]
    roles = column_roles.load(params, [c for c in frame.columns if c != target])
    suite = build_suite(frame, target, params["task"], roles)
    out = path(params, "suite")
    write_suite(suite, out)
    print(f"wrote {len(suite['expectations'])} expectations -> {out.relative_to(root)}; review and commit it")
    return 0

"""The expectation suite: a reviewable JSON file profiled from reference data.

`python -m <package> suite` rewrites ``paths.suite`` from the current raw data. Review the
diff before committing it: the suite is the data contract every later batch must meet.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..config import load_params, path, project_root

MARGIN = 0.1  # numeric bounds are widened by 10 % of the observed range on each side
MAX_CATEGORIES = 50


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _expect(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": f"expect_{kind}", "kwargs": kwargs}


def build_suite(frame, target: str, task: str, name: str = "raw") -> dict[str, Any]:
    """Profile ``frame`` into a suite: schema, completeness, ranges and label set."""
    from pandas.api.types import is_numeric_dtype

    rows = len(frame)
    expectations = [
        _expect("table_columns_to_match_set", column_set=sorted(map(str, frame.columns)), exact_match=True),
        _expect("table_row_count_to_be_between", min_value=max(1, math.ceil(rows / 2))),
    ]
    for column in sorted(map(str, frame.columns)):
        values = frame[column]
        present = values.notna().mean()
        if present == 1.0:
            expectations.append(_expect("column_values_to_not_be_null", column=column))
        else:
            expectations.append(
                _expect(
                    "column_values_to_not_be_null", column=column, mostly=_round(max(0.0, present - MARGIN))
                )
            )
        observed = values.dropna()
        categorical = column == target and task == "classification"
        if is_numeric_dtype(values) and not categorical and len(observed):
            low, high = float(observed.min()), float(observed.max())
            pad = (high - low) * MARGIN
            lower = 0.0 if low >= 0 and low - pad < 0 else _round(low - pad)
            expectations.append(
                _expect(
                    "column_values_to_be_between",
                    column=column,
                    min_value=lower,
                    max_value=_round(high + pad),
                )
            )
        elif observed.nunique() <= MAX_CATEGORIES:
            labels = sorted(observed.unique().tolist(), key=str)
            expectations.append(_expect("column_values_to_be_in_set", column=column, value_set=labels))
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
    suite = build_suite(frame, params["data"]["target"], params["task"])
    out = path(params, "suite")
    write_suite(suite, out)
    print(f"wrote {len(suite['expectations'])} expectations -> {out.relative_to(root)}; review and commit it")
    return 0

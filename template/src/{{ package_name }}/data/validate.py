"""Data validation gate: run the Great Expectations suite on the raw data.

The result summary is written to ``paths.validation`` whether the data passes or not.
On any failed expectation the command fails, naming the expectation, the column and
sample bad values, so DVC runs nothing downstream.
"""

from __future__ import annotations

import json

from .. import reports
from ..config import load_params, on_cluster, path, project_root
from ..errors import DataValidationError
from ..expectations import describe, run_suite, tolerated_line
from .table import read

__all__ = ["describe", "main", "run_suite"]


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "validate").parse_args(argv)

    params, root = load_params(), project_root()
    suite_dict = json.loads(path(params, "suite").read_text(encoding="utf-8"))
    if on_cluster(params):  # each partition on the cluster's workers, the counts added up
        from ..cluster import stages

        summary, where = stages.validate(params, suite_dict)
        print(f"validated on {where}")
    else:
        summary = run_suite(read(path(params, "raw"), params), suite_dict)
    out = path(params, "validation")
    reports.write_json(out, summary)
    if not summary["success"]:
        lines = "\n".join(f"  - {describe(f)}" for f in summary["failures"])
        raise DataValidationError(
            f"{summary['failed']} of {summary['evaluated']} expectations failed "
            f"(full result in {out.relative_to(root)}):\n{lines}\n"
            f"If the data changed legitimately (a new column, a new class, a wider range), run "
            f"`make suite` to profile the contract again, review the diff of "
            f"{params['paths']['suite']} and commit it."
        )
    print(f"validation passed: {summary['evaluated']} expectations -> {out.relative_to(root)}")
    for found in summary["tolerated"]:
        print(f"note: {tolerated_line(found)}")
    return 0

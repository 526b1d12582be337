"""CI quality gate: this change's metrics against business/ thresholds AND against the base branch.

The base branch's metrics come from ``dvc metrics diff <base>`` (so the base ref must exist
locally: CI checks out with full history). A metric with a threshold, or the primary metric,
may not get worse than on the base branch by more than ``ci.max_regression`` in
``business/kpis.yaml``. The verdict is printed as a markdown table and, in GitHub Actions,
appended to the job summary.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from .. import gates, reports
from ..config import load_kpis, load_params, path, project_root
from ..errors import QualityGateError


def base_metrics(base: str, metrics_file: str) -> dict[str, float] | None:
    """Metrics of ``metrics_file`` at git revision ``base``; None when the base has none yet."""
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "metrics", "diff", base, "--all", "--json", "--targets", metrics_file],
        capture_output=True,
        text=True,
        cwd=project_root(),
    )
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise QualityGateError(
            f"cannot read the metrics of {base!r}: {message[-1] if message else 'dvc metrics diff failed'}. "
            "Is the ref fetched? (in CI: actions/checkout with fetch-depth: 0)"
        )
    diff = (json.loads(done.stdout or "{}") or {}).get(metrics_file, {})
    old = {
        name: entry.get("old") for name, entry in diff.items() if isinstance(entry, dict) and "old" in entry
    }
    old = {name: value for name, value in old.items() if value is not None}
    return old or None


def computed(metrics: dict[str, Any]) -> list[str]:
    """The metrics the evaluation wrote: the names ``business/kpis.yaml`` may gate on."""
    return sorted(
        name
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    )


def compare(
    current: dict[str, float], base: dict[str, float] | None, kpis: gates.Kpis, intervals=None
) -> list[dict[str, Any]]:
    """One row per gated metric: the evaluation gate's checks (thresholds, the baseline, with the
    ``intervals`` the evaluation measured) and the regression check against ``base``."""
    tolerance, thresholds, primary = kpis.max_regression, kpis.thresholds, kpis.primary_metric
    verdicts = {c["metric"]: c for c in gates.gate(current, kpis, intervals=intervals)["checks"]}
    names = list(thresholds) + [m for m in [primary] if m and m not in thresholds]
    rows = []
    for name in names:
        value = current.get(name)
        meets = verdicts[name]["passed"] if name in verdicts else value is not None
        limits = [verdicts[name]["limit"]] if name in verdicts else []
        against = verdicts.get(f"{name} vs baseline")
        if against is not None:
            meets = meets and against["passed"]
            limits.append(f"beats baseline {against['baseline']} by {kpis.baseline_margin}")
        old = (base or {}).get(name)
        if old is None or value is None:
            change, regressed = None, False
        else:
            change = round(value - old, 6)
            regressed = kpis.bound_of(name).worse_by(value, old) > tolerance
        rows.append(
            {
                "metric": name,
                "threshold": "; ".join(limits) or "-",
                "base": old,
                "value": value,
                "change": change,
                "meets_threshold": meets,
                "no_regression": not regressed,
                "passed": meets and not regressed,
            }
        )
    return rows


def to_markdown(rows: list[dict[str, Any]], base: str, has_base: bool) -> str:
    def fmt(value, sign: str = "") -> str:
        return "-" if value is None else f"{value:{sign}.4f}"

    lines = [
        f"### Model quality gate (against `{base}`)",
        "",
        "| metric | threshold | base | this change | change | verdict |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        why = [] if row["meets_threshold"] else ["misses threshold"]
        why += [] if row["no_regression"] else ["worse than base"]
        verdict = "pass" if row["passed"] else "FAIL: " + ", ".join(why)
        lines.append(
            f"| {row['metric']} | {row['threshold']} | {fmt(row['base'])} | {fmt(row['value'])} "
            f"| {fmt(row['change'], '+')} | {verdict} |"
        )
    if not has_base:
        lines += ["", f"`{base}` has no metrics yet: only the thresholds were checked."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    options = parser(__doc__, "gate")
    options.add_argument("--base", default="main", help="git ref to compare with (default: main)")
    args = options.parse_args(argv)
    params, kpis, root = load_params(), load_kpis(), project_root()
    metrics_path = path(params, "metrics")
    if not metrics_path.exists():
        raise QualityGateError(
            f"{params['paths']['metrics']} is missing: run the pipeline first (make repro)"
        )
    current = json.loads(metrics_path.read_text(encoding="utf-8"))
    evaluation = path(params, "gate")
    report = json.loads(evaluation.read_text(encoding="utf-8")) if evaluation.is_file() else {}
    skipped = report.get("skipped") or {}  # what the evaluation could not compute is not gated
    kpis = kpis.without(list(skipped), skipped.get(kpis.primary_metric, {}).get("instead"))
    gates.check_metric_names(kpis, computed(current))
    base = base_metrics(args.base, metrics_path.relative_to(root).as_posix())
    rows = compare(current, base, kpis, (report.get("evidence") or {}).get("intervals"))
    reports.publish(None, rows, to_markdown(rows, args.base, base is not None))
    failed = [row["metric"] for row in rows if not row["passed"]]
    if failed:
        raise QualityGateError(f"metrics {', '.join(failed)} fail the gate against {args.base}")
    return 0

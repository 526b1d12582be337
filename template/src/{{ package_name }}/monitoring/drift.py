"""Monitoring: data drift of production inputs against the training data (Evidently).

Reference: the model's input columns of the training split (``paths.train``; see the column roles). Current: the ``inputs`` of the
service's prediction log (JSON Lines under ``PREDICTION_LOG_DIR`` if set, else ``paths.predictions``),
or ``--current`` (a CSV file or another log directory); ``--days N`` keeps the last N days of log
lines. Evidently's DataDriftPreset tests each column; the share of drifted columns is compared with
``monitoring.drift_share.max`` in ``business/kpis.yaml``. Writes the HTML report (``paths.drift_report``) and the verdict
(``paths.drift``: drift share, drifted columns, ``retrain``), and in GitHub Actions appends
``retrain=true|false`` to ``$GITHUB_OUTPUT``. Exits 0 either way (the workflow branches on the output;
``--fail-on-drift`` fails instead), but fails when there is no production data at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import reports
from ..config import load_kpis, load_params, path, project_root, shown
from ..data.table import read_table
from ..errors import GateError
from ..gates import Kpis
from ..serving.log import read_log

EXTREME = 1e9  # a logged value beyond this many times the training data's largest is left out


def align(reference, current):
    """``current`` restricted to the reference columns, cast to the reference types where possible.
    Returns ``(current, missing_columns)``."""
    import pandas as pd

    missing = [c for c in reference.columns if c not in current.columns]
    current = current[[c for c in reference.columns if c in current.columns]].copy()
    for column in current.columns:
        if pd.api.types.is_numeric_dtype(reference[column]):
            values = pd.to_numeric(current[column], errors="coerce").astype("float64")
            # Values far outside anything seen in training (1e308, say) break the statistics' arithmetic:
            # they count as missing here (the report shows the column's missing share grow).
            largest = float(reference[column].abs().max()) if reference[column].notna().any() else 0.0
            current[column] = values.where(values.abs() <= EXTREME * (largest + 1.0))
    return current, missing


def detect(reference, current, max_share: float) -> tuple[dict[str, Any], Any]:
    """Evidently's data drift of ``current`` against ``reference``: ``(verdict, snapshot)``."""
    import warnings

    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numeric = [c for c in reference.columns if pd.api.types.is_numeric_dtype(reference[c])]
    categorical = [c for c in reference.columns if c not in numeric]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset(drift_share=max_share)], include_tests=True).run(
            reference_data=Dataset.from_pandas(reference, data_definition=definition),
            current_data=Dataset.from_pandas(current, data_definition=definition),
        )
    result = snapshot.dict()
    columns = {}
    for test in result["tests"]:  # one "Value Drift for column X" test per column; FAIL = drifted
        params = (test.get("metric_config") or {}).get("params") or {}
        if params.get("type", "").endswith("ValueDrift"):
            columns[params["column"]] = {
                "drifted": test["status"] == "FAIL",
                "method": params.get("method"),
                "threshold": params.get("threshold"),
            }
    scores = {
        m["config"]["column"]: m["value"]
        for m in result["metrics"]
        if m["config"].get("type", "").endswith("ValueDrift")
    }
    for column, score in scores.items():
        if column in columns:
            columns[column]["score"] = round(float(score), 6)
    drifted = [c for c, info in columns.items() if info["drifted"]]
    share = len(drifted) / len(columns) if columns else 0.0
    verdict = {
        "drift_share": round(share, 4),
        "threshold": max_share,
        "retrain": share > max_share,
        "drifted_columns": drifted,
        "columns": columns,
    }
    return verdict, snapshot


def sampled(frame, limit: int):
    """``frame``, or a seeded sample of ``limit`` of its rows when it has more, and its row count.
    The drift statistics on 100,000 rows of each side differ from those on every row by less than
    the noise between two days of traffic (bench/scale.py measures it), at a fraction of the time."""
    rows = len(frame)
    return (frame.sample(n=limit, random_state=0) if rows > limit else frame), rows


def current_data(params: dict[str, Any], source: str | None, days: int | None):
    """The production inputs: ``(frame, description)``; a CSV or Parquet file (a Parquet dataset's
    folder too) or a prediction-log directory."""
    import pandas as pd

    from ..data.table import parquet
    from ..serving.log import log_dir  # PREDICTION_LOG_DIR, else paths.predictions

    root = project_root()
    location = Path(source) if source else log_dir(params)
    if not location.is_absolute():
        location = root / location
    where = shown(location)
    if location.is_file() or (location.is_dir() and parquet(location)):
        frame = read_table(location)
        return frame.drop(columns=[params["data"]["target"]], errors="ignore"), where
    if not location.is_dir():
        return pd.DataFrame(), where
    frame, skipped = read_log(location, days)
    if skipped:
        print(f"warning: skipped {skipped} unreadable prediction-log lines in {where}")
    if frame.attrs.get("qa_rows"):
        print(f"left out {frame.attrs['qa_rows']} rows of QA and load-test traffic (not production data)")
    return frame, f"{where} (prediction log{f', last {days} days' if days is not None else ''})"


def write_outputs(params: dict[str, Any], verdict: dict[str, Any], snapshot) -> None:
    report = path(params, "drift_report")
    report.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(report))
    reports.write_json(path(params, "drift"), verdict)
    reports.outputs(retrain=verdict["retrain"], drift_share=verdict["drift_share"])


def run(params: dict[str, Any], kpis: Kpis, source: str | None = None, days: int | None = None):
    """Compare production inputs with the training data; write the report and the verdict."""
    from ..data import roles as column_roles
    from ..data.prepare import with_features

    target = params["data"]["target"]
    limit = int((params.get("drift") or {}).get("sample_rows", 100_000))
    reference, reference_rows = sampled(read_table(path(params, "train")), limit)
    reference = with_features(reference, target).drop(columns=[target])
    # The model's inputs only: IDs, dates, free text and constants drift by nature.
    reference = reference[column_roles.features(column_roles.load(params, reference.columns))]
    current, description = current_data(params, source, days)
    if current.empty:
        raise GateError(
            f"no production data in {description}: nothing to compare with the training data. "
            "Serve the model (the service logs every prediction there), or point --current at a CSV "
            "file or a prediction-log directory"
        )
    current, current_rows = sampled(current, limit)
    current = with_features(current, target)  # the features prepare.derive adds, as the model saw them
    current, missing = align(reference, current)
    if current.shape[1] == 0:
        raise GateError(f"the production data in {description} has none of the model's input columns")
    from .. import gates

    limit = kpis.monitoring.get("drift_share") or gates.Bound(
        f"{gates.KPIS}: monitoring.drift_share", max=0.3
    )
    if limit.max is None:
        raise gates.SettingsError(f"{gates.KPIS}: monitoring.drift_share: give the largest share as max")
    max_share = limit.max
    # A column that arrives empty (a field nobody fills, a broken sensor) has drifted: it is counted
    # so, not handed to the statistics, which cannot take an empty column. One empty in the
    # training data too cannot be compared, and is left out.
    empty = [c for c in current.columns if current[c].isna().all() and reference[c].notna().any()]
    compared = [c for c in current.columns if current[c].notna().any() and reference[c].notna().any()]
    if not compared:
        raise GateError(
            f"every model input column in {description} is empty ({', '.join(map(str, current.columns))}): "
            "the service is logging no values, or the data's columns changed"
        )
    verdict, snapshot = detect(reference[compared], current[compared], max_share)
    for column in empty:
        verdict["columns"][column] = {"drifted": True, "method": "empty in production", "threshold": None}
    drifted = [c for c, info in verdict["columns"].items() if info["drifted"]]
    share = len(drifted) / len(verdict["columns"])
    verdict.update(
        drift_share=round(share, 4), retrain=share > max_share, drifted_columns=drifted, empty_columns=empty
    )
    verdict = {
        "reference": params["paths"]["train"],
        "current": description,
        "rows": {"reference": reference_rows, "current": current_rows},
        "compared_rows": {"reference": len(reference), "current": len(current)},
        "missing_columns": missing,
        **verdict,
        "report": params["paths"]["drift_report"],
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_outputs(params, verdict, snapshot)
    return verdict


def describe(verdict: dict[str, Any]) -> str:
    drifted = verdict["drifted_columns"]
    lines = [
        f"drift: {len(drifted)} of {len(verdict['columns'])} columns drifted "
        f"(share {verdict['drift_share']:.2f}, retrain above {verdict['threshold']}), "
        f"{verdict['rows']['current']} production rows against {verdict['rows']['reference']} training rows",
    ]
    compared = verdict.get("compared_rows", verdict["rows"])
    if compared != verdict["rows"]:
        lines.append(
            f"compared on seeded samples: {compared['reference']} training and {compared['current']} "
            "production rows (drift.sample_rows in params.yaml)"
        )
    if drifted:
        lines.append("drifted columns: " + ", ".join(drifted))
    if verdict.get("empty_columns"):
        lines.append(
            "columns empty in the production data (counted as drifted): "
            + ", ".join(verdict["empty_columns"])
        )
    if verdict["missing_columns"]:
        lines.append("columns missing from the production data: " + ", ".join(verdict["missing_columns"]))
    if verdict["rows"]["current"] < 30:
        lines.append("warning: fewer than 30 production rows, the verdict is unreliable")
    lines.append(
        "VERDICT: drift above the threshold: RETRAIN (make retrain)"
        if verdict["retrain"]
        else "VERDICT: no significant drift: no retraining needed"
    )
    lines.append(f"report: {verdict['report']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    options = parser(__doc__, "drift")
    options.add_argument(
        "--current", help="a CSV file or a prediction-log directory (default: paths.predictions)"
    )
    options.add_argument("--days", type=int, help="only the prediction-log lines of the last N days")
    options.add_argument(
        "--fail-on-drift", action="store_true", help="exit 1 when retraining is needed (for local use)"
    )
    args = options.parse_args(argv)
    verdict = run(load_params(), load_kpis(), args.current, args.days)
    print(describe(verdict))
    if args.fail_on_drift and verdict["retrain"]:
        raise GateError(
            f"{len(verdict['drifted_columns'])} of {len(verdict['columns'])} columns drifted "
            f"(share {verdict['drift_share']:.2f} > {verdict['threshold']}): retrain the model"
        )
    return 0

"""Evaluation, tracking and the business quality gate.

Computes test metrics and plot data, logs the run to MLflow (parameters, metrics, the model
with signature and input example, lineage tags), compares the metrics with the thresholds in
``business/kpis.yaml`` and fails when the model falls short. A passing model is registered
under the alias ``challenger``; `promote` decides about ``champion``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import load_kpis, load_params, path, project_root
from ..errors import QualityGateError


def compute_metrics(task: str, model, features, labels) -> tuple[dict[str, float], dict[str, list[dict]]]:
    """Return ``(metrics, plots)``; plots are lists of rows for DVC plots."""
    from sklearn import metrics as m

    predicted = model.predict(features)
    if task == "classification":
        result = {
            "accuracy": m.accuracy_score(labels, predicted),
            "f1": m.f1_score(labels, predicted, average="binary" if labels.nunique() == 2 else "macro"),
        }
        plots = {
            "confusion": [
                {"actual": a, "predicted": p}
                for a, p in zip(labels.tolist(), predicted.tolist(), strict=True)
            ]
        }
        if labels.nunique() == 2 and hasattr(model, "predict_proba"):
            scores = model.predict_proba(features)[:, 1]
            result["roc_auc"] = m.roc_auc_score(labels, scores)
            fpr, tpr, _ = m.roc_curve(labels, scores, pos_label=model.classes_[1])
            plots["roc"] = [
                {"fpr": round(f, 6), "tpr": round(t, 6)}
                for f, t in zip(fpr.tolist(), tpr.tolist(), strict=True)
            ]
    else:
        result = {
            "r2": m.r2_score(labels, predicted),
            "rmse": m.root_mean_squared_error(labels, predicted),
            "mae": m.mean_absolute_error(labels, predicted),
        }
        plots = {
            "residuals": [
                {"actual": round(a, 6), "predicted": round(p, 6), "residual": round(a - p, 6)}
                for a, p in zip(labels.tolist(), predicted.tolist(), strict=True)
            ]
        }
    return {k: round(float(v), 6) for k, v in result.items()}, plots


def check_gate(metrics: dict[str, float], kpis: dict[str, Any]) -> dict[str, Any]:
    """Compare ``metrics`` with ``kpis['thresholds']`` (``{metric: {min: x}|{max: y}}``)."""
    checks = []
    for name, bounds in (kpis.get("thresholds") or {}).items():
        value = metrics.get(name)
        for kind, limit in bounds.items():
            if kind not in ("min", "max"):
                raise ValueError(f"threshold {name}.{kind}: use 'min' or 'max'")
            ok = value is not None and (value >= limit if kind == "min" else value <= limit)
            checks.append({"metric": name, "value": value, kind: limit, "passed": ok})
    return {"passed": all(c["passed"] for c in checks), "checks": checks}


def write_json(target: Path, payload: Any) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "evaluate").parse_args(argv)
    import joblib
    import pandas as pd

    from ..registry import tracking
    from .train import split_xy

    params, root = load_params(), project_root()
    target = params["data"]["target"]
    model = joblib.load(path(params, "model"))
    features, labels = split_xy(pd.read_csv(path(params, "test")), target)
    metrics, plots = compute_metrics(params["task"], model, features, labels)
    write_json(path(params, "metrics"), metrics)
    plot_dir = path(params, "plots")
    plot_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in plots.items():
        pd.DataFrame(rows).to_csv(plot_dir / f"{name}.csv", index=False)
    gate = check_gate(metrics, load_kpis(root))
    write_json(path(params, "gate"), gate)

    run = tracking.log_run(
        model,
        features,
        params=tracking.flatten({k: params[k] for k in ("task", "data", "prepare", "train")}),
        metrics={f"test_{k}": v for k, v in metrics.items()},
        tags={**tracking.lineage_tags(root, path(params, "train")), "quality_gate": _verdict(gate)},
        settings=params["tracking"],
    )
    if not gate["passed"]:
        failed = [c for c in gate["checks"] if not c["passed"]]
        lines = "\n".join(
            f"  - {c['metric']} = {c['value']} but business/kpis.yaml requires "
            + (f">= {c['min']}" if "min" in c else f"<= {c['max']}")
            for c in failed
        )
        raise QualityGateError(
            f"the model falls short of the business thresholds; MLflow run {run['run_id']} "
            f"is tagged quality_gate=failed and nothing was registered:\n{lines}"
        )
    version = tracking.register_challenger(run, metrics, params["tracking"])
    print(
        f"quality gate passed {metrics}; registered {params['tracking']['model_name']} v{version} as challenger"
    )
    return 0


def _verdict(gate: dict[str, Any]) -> str:
    return "passed" if gate["passed"] else "failed"

"""Evaluation, tracking and the business quality gate.

Computes test metrics and plot data for the task (``metrics.py``) and the metrics of a trivial
baseline (the majority class, or the mean), logs the run to MLflow (parameters, metrics, the model
with signature and input example, lineage tags), and checks the gate of ``business/kpis.yaml``:
every threshold, and the primary metric beating the baseline by ``baseline_margin``. A model that
falls short fails the pipeline; a passing one is registered under the alias ``challenger``, and
`promote` decides about ``champion``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from .. import reports
from ..config import load_kpis, load_params, path, project_root
from ..data.prepare import checked_roles
from ..data.table import read
from . import metrics as task_metrics


def judge(kpis, task: str, model, trivial, features, labels, metrics, positive=None, report=None) -> dict:
    """The gate's verdict on a model's ``metrics`` (``metrics['baseline']``: the ``trivial``
    model's), weighing the evidence of the held-out ``features``/``labels``: each gated metric's
    interval over bootstrap resamples, and the least the split must hold (``evidence`` in
    ``business/kpis.yaml``)."""
    from .. import gates

    report = report or {}
    evidence = kpis.evidence
    gated = [name for name in kpis.thresholds if name in metrics]
    primary = kpis.primary_metric if kpis.baseline_margin is not None else None
    primary = primary if primary in metrics else None
    intervals = task_metrics.bootstrap(
        task, model, trivial, features, labels, gated, evidence, positive, primary
    )
    counts = None
    if task == "classification":
        found = labels.astype(str).value_counts()
        counts = {str(label): int(found.get(str(label), 0)) for label in model.classes_}
    more = gates.evidence_checks(len(labels), counts, kpis)
    verdict = gates.gate(metrics, kpis, reasons=report.get("not_computed"), intervals=intervals, more=more)
    return {**verdict, "evidence": {**dataclasses.asdict(evidence), "intervals": intervals}}


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "evaluate").parse_args(argv)
    import joblib
    import pandas as pd

    from .. import gates
    from ..deployment import model as model_module
    from ..registry import tracking
    from .flavour import sklearn_logger
    from .train import hyperparameters_of

    params, root = load_params(), project_root()
    kpis = load_kpis(root)
    task, target = params["task"], params["data"]["target"]
    model = joblib.load(path(params, "model"))
    test = read(path(params, "test"), params)
    checked_roles(params, test)
    features, labels = test[list(model.feature_names_in_)], test[target]  # derive runs in the model
    train_labels = read(path(params, "train"), params, usecols=[target])[target]
    report: dict[str, Any] = {"task": task}
    positive = None
    if task == "classification":
        classes = list(model.classes_)
        report["classes"] = [str(c) for c in classes]
        if len(classes) == 2:
            positive = task_metrics.positive_class(
                classes, train_labels, params["data"].get("positive_class")
            )
            report["positive_class"] = str(positive)
        elif params["data"].get("positive_class") is not None:
            print(f"note: data.positive_class is not used: {len(classes)} classes (it chooses one of two)")
        missing = task_metrics.not_computed(classes, labels)
        if missing:
            report["not_computed"] = missing
            print(f"note: {', '.join(missing)} not computed: {next(iter(missing.values()))}")
    metrics, plots = task_metrics.compute(task, model, features, labels, positive)
    if task != "classification":
        report["out_of_range"] = task_metrics.out_of_range(model.predict(features), train_labels)
        outside = report["out_of_range"]
        if outside["rows"]:
            print(
                f"note: {outside['rows']} of {len(labels)} predictions ({outside['share']:.1%}) fall outside "
                f"the target's range in training [{outside['range'][0]}, {outside['range'][1]}]"
            )
    trivial = task_metrics.trivial(task, train_labels)
    metrics["baseline"] = task_metrics.compute(task, trivial, features, labels, positive)[0]
    reports.write_json(path(params, "metrics"), metrics)
    plot_dir = path(params, "plots")
    plot_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in plots.items():
        pd.DataFrame(rows).to_csv(plot_dir / f"{name}.csv", index=False)
    # After the metrics are written: a misspelt name in business/kpis.yaml stops the run here, and
    # the reports stay for `make gate` and `make plots` (which name the same key).
    gates.check_metric_names(kpis, task_metrics.available(task, len(report.get("classes", []))))
    gate = {**report, **judge(kpis, task, model, trivial, features, labels, metrics, positive, report)}
    # the very model file the verdict is about: serving and scoring use only a passed one
    gate["model_sha256"] = model_module.file_digest(path(params, "model"))
    reports.write_json(path(params, "gate"), gate)

    flat = {k: v for k, v in metrics.items() if k != "baseline"}
    run = tracking.log_run(
        params=tracking.flatten(
            {
                **{k: params[k] for k in ("task", "data", "prepare")},
                # the hyperparameters the model was fitted with, not every estimator's block
                "train": {
                    "estimator": params["train"]["estimator"],
                    "hyperparameters": hyperparameters_of(task, params["train"])[0],
                },
            }
        ),
        metrics={
            **{f"test_{k}": v for k, v in flat.items()},
            **{f"baseline_{k}": v for k, v in metrics["baseline"].items()},
        },
        tags={
            **tracking.lineage_tags(root, path(params, "train")),
            "quality_gate": "passed" if gate["passed"] else "failed",
            **({"positive_class": report["positive_class"]} if positive is not None else {}),
        },
        settings=params["tracking"],
        log_model=sklearn_logger(
            model, features, json.loads(path(params, "signature").read_text(encoding="utf-8"))
        ),
    )
    about = f" (positive class: {report['positive_class']})" if positive is not None else ""
    version = tracking.register_if_passed(
        gate, run, flat, params["tracking"], f"the model falls short of the business thresholds{about}"
    )
    print(
        f"quality gate passed{about} {flat}; "
        f"registered {params['tracking']['model_name']} v{version} as challenger"
    )
    return 0

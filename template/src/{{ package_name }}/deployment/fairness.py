"""Responsible AI: the model's metrics per group of the sensitive feature, on held-out data.

Groups come from ``fairness.sensitive_feature`` in ``business/kpis.yaml``; a numeric feature with
more than 10 distinct values is binned into quartiles of the held-out data (the output says so).
With fairlearn's MetricFrame the model (``paths.model``) is scored per group on ``paths.test``:
classification: accuracy, selection_rate (share predicted positive), true/false positive rates
(binary models); regression: mae and the mean prediction. The check fails when a metric's
between-group difference (largest minus smallest group value) exceeds
``fairness.max_difference[metric]``; groups with fewer held-out rows than
``fairness.min_group_rows`` (default 20) are reported but left out of the differences, so a handful
of rows cannot decide the verdict. The sensitive feature may be any column of the data, a
left-out one too. Without a ``fairness`` block it says so and passes.
Writes ``paths.fairness`` and prints a markdown table (also to the GitHub job summary).
"""

from __future__ import annotations

import math
from typing import Any

from .. import reports
from ..config import load_kpis, load_params, path
from ..errors import GateError
from ..gates import Kpis

MAX_DISTINCT = 10  # a numeric feature with more distinct values is binned into quartiles


def groups_of(values) -> tuple[Any, str | None]:
    """The group of each row, and a note when the feature had to be binned."""
    import pandas as pd

    distinct = values.nunique()
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and distinct > MAX_DISTINCT:
        bins, edges = pd.qcut(values, 4, labels=False, retbins=True, duplicates="drop")
        edges = [values.min(), *edges[1:]]
        labels = [
            f"Q{i + 1} {'[' if i == 0 else '('}{edges[i]:.4g}, {edges[i + 1]:.4g}]"
            for i in range(len(edges) - 1)
        ]
        note = (
            f"{values.name} is numeric with {distinct} distinct values: grouped into "
            f"{len(labels)} quartile bins of the held-out data"
        )
        named = bins.map(lambda b: "missing" if pd.isna(b) else labels[int(b)])
        return named.rename(values.name), note
    return values.astype(str).where(values.notna(), "missing"), None


def _rate_among(actual, positive):
    """Share of rows predicted ``positive`` among rows whose label is ``actual`` (NaN when there are none)."""

    def rate(y_true, y_pred) -> float:
        import numpy as np

        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        mask = (y_true == positive) if actual else (y_true != positive)
        return float(np.mean(y_pred[mask] == positive)) if mask.any() else math.nan

    return rate


def metric_functions(task: str, model, labels, positive: Any = None) -> dict[str, Any]:
    """The metrics compared between groups, by task."""
    from functools import partial

    from fairlearn.metrics import mean_prediction, selection_rate
    from sklearn.metrics import accuracy_score, mean_absolute_error

    if task != "classification":
        return {"mae": mean_absolute_error, "mean_prediction": mean_prediction}
    metrics = {"accuracy": accuracy_score}
    classes = list(getattr(model, "classes_", sorted(labels.unique())))
    if len(classes) == 2:
        positive = classes[1] if positive is None else positive
        metrics["selection_rate"] = partial(selection_rate, pos_label=positive)
        metrics["true_positive_rate"] = _rate_among(True, positive)
        metrics["false_positive_rate"] = _rate_among(False, positive)
    return metrics


def evaluate(
    model, features, labels, task: str, settings, inputs=None, positive: Any = None
) -> dict[str, Any]:
    """Group metrics of ``model`` on ``features``/``labels`` and the verdict against ``settings``
    (a ``gates.Fairness``: the ``fairness`` block of business/kpis.yaml).
    ``features`` holds the sensitive feature; ``inputs`` (default: ``features``) is what the model
    is given."""
    import warnings

    from fairlearn.metrics import MetricFrame

    name = settings.sensitive_feature
    if name not in features.columns:
        raise GateError(
            f"the sensitive feature {name!r} (business/kpis.yaml: fairness) is not a column of the "
            f"held-out data; columns are: {', '.join(map(str, features.columns))}"
        )
    groups, note = groups_of(features[name])
    metrics = metric_functions(task, model, labels, positive)
    inputs = features if inputs is None else inputs
    minimum = settings.min_group_rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = MetricFrame(
            metrics=metrics, y_true=labels, y_pred=model.predict(inputs), sensitive_features=groups
        )
    sizes = groups.value_counts()
    compared = frame.by_group.loc[[g for g in frame.by_group.index if sizes.get(g, 0) >= minimum]]
    difference = {
        m: compared[m].max() - compared[m].min() if compared[m].notna().sum() >= 2 else math.nan
        for m in metrics
    }
    by_group = {
        str(group): {"rows": int((groups == group).sum()), **{m: _number(v) for m, v in row.items()}}
        for group, row in frame.by_group.iterrows()
    }
    limits = settings.max_difference
    checks = []
    for metric, limit in limits.items():
        value = _number(difference.get(metric)) if metric in metrics else None
        check = {"metric": metric, "difference": value, "max": limit, "passed": False}
        if metric not in metrics:
            check["reason"] = f"not computed for this model (computed: {', '.join(metrics)})"
        elif value is None:
            check["reason"] = f"undefined: fewer than two groups with {minimum} or more rows for it"
        else:
            check["passed"] = value <= limit
        checks.append(check)
    return {
        "configured": True,
        "sensitive_feature": name,
        "binned": note,
        "min_group_rows": minimum,
        "groups": by_group,
        "difference": {m: _number(v) for m, v in difference.items()},
        "max_difference": limits,
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
    }


def _number(value) -> float | None:
    return (
        None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 6)
    )


def run(params: dict[str, Any], kpis: Kpis) -> dict[str, Any]:
    """The check as configured in ``kpis``: load the model and the held-out data, evaluate, write
    ``paths.fairness``. Does not raise on a failed check: see ``result['passed']``."""
    settings = kpis.fairness
    if settings is None:
        result = {
            "configured": False,
            "passed": True,
            "message": "responsible-AI check not configured: business/kpis.yaml has no fairness "
            "block with a sensitive_feature",
        }
    else:
        import joblib

        target = params["data"]["target"]
        model_file, test_file = path(params, "model"), path(params, "test")
        for needed in (model_file, test_file):
            if not needed.exists():
                raise GateError(f"{needed.name} is missing: run the pipeline first (make repro)")
        from ..data.prepare import checked_roles
        from ..data.table import read
        from ..training.metrics import positive_class

        test = read(test_file, params)
        model = joblib.load(model_file)
        checked_roles(params, test)
        positive = None
        if params["task"] == "classification" and len(getattr(model, "classes_", [])) == 2:
            train_file = path(params, "train")  # the held-out labels are split in the same proportions
            train_labels = (
                read(train_file, params, usecols=[target])[target] if train_file.exists() else test[target]
            )
            positive = positive_class(
                list(model.classes_), train_labels, params["data"].get("positive_class")
            )
        result = evaluate(
            model,
            test.drop(columns=[target]),
            test[target],
            params["task"],
            settings,
            inputs=test[list(model.feature_names_in_)],  # prepare.derive runs in the model
            positive=positive,
        )
    reports.write_json(path(params, "fairness"), result)
    return result


def failures(result: dict[str, Any]) -> list[str]:
    """One line per failed check."""
    lines = []
    for check in result.get("checks", []):
        if not check["passed"]:
            why = check.get("reason") or f"difference {check['difference']} > max {check['max']}"
            lines.append(f"{check['metric']} between groups of {result['sensitive_feature']}: {why}")
    return lines


def to_markdown(result: dict[str, Any]) -> str:
    if not result.get("configured"):
        return f"### Responsible AI\n\n{result['message']}.\n"

    def fmt(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    metrics = list(result["difference"])
    limits = result["max_difference"]
    lines = [f"### Responsible AI: metrics per group of `{result['sensitive_feature']}`", ""]
    if result["binned"]:
        lines += [f"{result['binned']}.", ""]
    lines += [
        "| group | rows | " + " | ".join(metrics) + " |",
        "|---|---:|" + "---:|" * len(metrics),
    ]
    for group, row in result["groups"].items():
        lines.append(f"| {group} | {row['rows']} | " + " | ".join(fmt(row.get(m)) for m in metrics) + " |")
    lines.append("| **difference** | | " + " | ".join(fmt(result["difference"][m]) for m in metrics) + " |")
    lines.append("| max allowed | | " + " | ".join(fmt(limits.get(m)) for m in metrics) + " |")
    failed = failures(result)
    lines += ["", "Verdict: " + ("pass" if not failed else "FAIL: " + "; ".join(failed))]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "fairness").parse_args(argv)
    params = load_params()
    result = run(params, load_kpis())
    table = to_markdown(result)
    print(table)
    if result.get("configured"):
        reports.summary(table)
    failed = failures(result)
    if failed:
        raise GateError("responsible-AI check: " + "; ".join(failed))
    print(f"result written to {params['paths']['fairness']}")
    return 0

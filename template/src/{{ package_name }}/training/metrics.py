"""Test metrics and plot data for each task, and the trivial baseline the model must beat.

- Two classes: accuracy, balanced_accuracy, f1_macro and, about the positive class
  (``data.positive_class``), f1, precision, recall, roc_auc; an ROC curve.
- Three or more classes: accuracy, balanced_accuracy, f1_macro, f1_weighted, precision_macro,
  recall_macro, roc_auc_ovr and roc_auc_ovr_weighted (one-vs-rest); a micro-averaged ROC curve.
- Regression: r2, rmse, mae; residuals.

Every classifier gets the full confusion matrix (one row per test row: actual, predicted). The
baseline is the trivial model of the training labels: the class priors (majority class) or the mean.
"""

from __future__ import annotations

import warnings
from typing import Any

TRUTHY = ("1", "1.0", "true", "yes", "y", "positive", "pos")
BINARY_ONLY = ("f1", "precision", "recall", "roc_auc")
MULTICLASS_ONLY = ("f1_weighted", "precision_macro", "recall_macro", "roc_auc_ovr", "roc_auc_ovr_weighted")
CLASSIFICATION = ("accuracy", "balanced_accuracy", "f1_macro")
REGRESSION = ("r2", "rmse", "mae")


def available(task: str, classes: int) -> tuple[str, ...]:
    """The metrics this task (and number of classes) computes."""
    if task != "classification":
        return REGRESSION
    return CLASSIFICATION + (BINARY_ONLY if classes == 2 else MULTICLASS_ONLY)


def positive_class(classes: list[Any], train_labels, configured: Any = None) -> Any:
    """The positive class of a two-class problem: ``configured`` (matched as text), else 1/true/yes,
    else the rarer class in the training labels."""
    from ..errors import SettingsError

    if configured is not None:
        for label in classes:
            if str(label) == str(configured) or (
                _number(label) is not None and _number(label) == _number(configured)
            ):
                return label
        raise SettingsError(
            f"params.yaml: data.positive_class is {configured!r}, not one of the classes "
            f"{', '.join(map(repr, classes))}"
        )
    for label in classes:
        if str(label).strip().lower() in TRUTHY:
            return label
    counts = train_labels.value_counts()
    return min(classes, key=lambda label: (counts.get(label, 0), -classes.index(label)))


def absent_classes(classes: list[Any], labels) -> list[Any]:
    """The model's classes without a row in ``labels``: ROC AUC needs one of each."""
    import numpy as np

    seen = set(np.asarray(labels).tolist())
    return [label for label in classes if label not in seen]


def not_computed(classes: list[Any], labels) -> dict[str, str]:
    """Why ``classification`` leaves a metric of ``available`` out, by metric (empty: none left out).
    A class with a row or two rarely reaches the test split (``prepare.test_size`` of each class)."""
    absent = absent_classes(classes, labels)
    if not absent:
        return {}
    from ..errors import listed

    shown = listed(repr(str(label)) for label in absent)
    reason = (
        f"the test split has no row of {'class' if len(absent) == 1 else 'classes'} {shown}, too rare "
        "to hold one out: collect more rows of it, or merge it into another class"
    )
    return dict.fromkeys(
        ("roc_auc",) if len(classes) == 2 else ("roc_auc_ovr", "roc_auc_ovr_weighted"), reason
    )


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def classification(model, features, labels, positive: Any = None) -> tuple[dict[str, float], dict[str, list]]:
    """Metrics and plots of a fitted classifier on held-out ``features``/``labels``."""
    import numpy as np
    from sklearn import metrics as m
    from sklearn.preprocessing import label_binarize

    classes = list(model.classes_)
    predicted = model.predict(features)
    scores = model.predict_proba(features)
    with warnings.catch_warnings():  # a class the test split lacks: `not_computed` says so
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        result: dict[str, float] = {
            "accuracy": m.accuracy_score(labels, predicted),
            "balanced_accuracy": m.balanced_accuracy_score(labels, predicted),
            "f1_macro": m.f1_score(labels, predicted, average="macro", labels=classes, zero_division=0),
        }
    plots: dict[str, list] = {
        "confusion": [
            {"actual": str(a), "predicted": str(p)}
            for a, p in zip(labels.tolist(), predicted.tolist(), strict=True)
        ]
    }
    every_class = not absent_classes(classes, labels)
    if len(classes) == 2:
        is_positive = np.asarray(labels) == positive
        column = scores[:, classes.index(positive)]
        for name, function in (
            ("f1", m.f1_score),
            ("precision", m.precision_score),
            ("recall", m.recall_score),
        ):
            result[name] = function(labels, predicted, pos_label=positive, zero_division=0)
        if every_class:
            result["roc_auc"] = m.roc_auc_score(is_positive, column)
        fpr, tpr, _ = m.roc_curve(is_positive, column)
    else:
        result["f1_weighted"] = m.f1_score(
            labels, predicted, average="weighted", labels=classes, zero_division=0
        )
        result["precision_macro"] = m.precision_score(
            labels, predicted, average="macro", labels=classes, zero_division=0
        )
        result["recall_macro"] = m.recall_score(
            labels, predicted, average="macro", labels=classes, zero_division=0
        )
        if every_class:
            for average, name in (("macro", "roc_auc_ovr"), ("weighted", "roc_auc_ovr_weighted")):
                result[name] = m.roc_auc_score(
                    labels, scores, multi_class="ovr", average=average, labels=classes
                )
        onehot = label_binarize(labels, classes=classes)
        fpr, tpr, _ = m.roc_curve(onehot.ravel(), scores.ravel())  # micro-average over the classes
    plots["roc"] = [
        {"fpr": round(f, 6), "tpr": round(t, 6)} for f, t in zip(fpr.tolist(), tpr.tolist(), strict=True)
    ]
    return {k: round(float(v), 6) for k, v in result.items()}, plots


def regression(model, features, labels) -> tuple[dict[str, float], dict[str, list]]:
    from sklearn import metrics as m

    predicted = model.predict(features)
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


def compute(task: str, model, features, labels, positive: Any = None):
    """``(metrics, plots)`` of ``model`` on held-out data."""
    if task == "classification":
        return classification(model, features, labels, positive)
    return regression(model, features, labels)


def baseline(task: str, train_labels, features, labels, positive: Any = None) -> dict[str, float]:
    """The metrics of the trivial model fitted on ``train_labels``: class priors (it always predicts
    the majority class) or the mean."""
    import numpy as np
    from sklearn.dummy import DummyClassifier, DummyRegressor

    trivial = (
        DummyClassifier(strategy="prior") if task == "classification" else DummyRegressor(strategy="mean")
    )
    trivial.fit(np.zeros((len(train_labels), 1)), train_labels)  # it never looks at the features
    return compute(task, trivial, features, labels, positive)[0]

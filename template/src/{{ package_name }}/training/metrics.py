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
    result = classification_scores(classes, predicted, scores, labels, positive)
    plots: dict[str, list] = {
        "confusion": [
            {"actual": str(a), "predicted": str(p)}
            for a, p in zip(labels.tolist(), predicted.tolist(), strict=True)
        ]
    }
    if len(classes) == 2:
        is_positive = np.asarray(labels) == positive
        fpr, tpr, _ = m.roc_curve(is_positive, scores[:, classes.index(positive)])
    else:
        onehot = label_binarize(labels, classes=classes)
        fpr, tpr, _ = m.roc_curve(onehot.ravel(), scores.ravel())  # micro-average over the classes
    plots["roc"] = [
        {"fpr": round(f, 6), "tpr": round(t, 6)} for f, t in zip(fpr.tolist(), tpr.tolist(), strict=True)
    ]
    return {k: round(float(v), 6) for k, v in result.items()}, plots


def classification_scores(
    classes: list[Any], predicted, scores, labels, positive: Any = None
) -> dict[str, float]:
    """The classification metrics of predictions (``predicted``, class probabilities ``scores``)
    against ``labels``; ROC AUC only when every class is among the labels."""
    import numpy as np
    from sklearn import metrics as m

    with warnings.catch_warnings():  # a class the test split lacks: `not_computed` says so
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        result: dict[str, float] = {
            "accuracy": m.accuracy_score(labels, predicted),
            "balanced_accuracy": m.balanced_accuracy_score(labels, predicted),
            "f1_macro": m.f1_score(labels, predicted, average="macro", labels=classes, zero_division=0),
        }
        every_class = not absent_classes(classes, labels)
        if len(classes) == 2:
            for name, function in (
                ("f1", m.f1_score),
                ("precision", m.precision_score),
                ("recall", m.recall_score),
            ):
                result[name] = function(labels, predicted, pos_label=positive, zero_division=0)
            if every_class:
                is_positive = np.asarray(labels) == positive
                result["roc_auc"] = m.roc_auc_score(is_positive, scores[:, classes.index(positive)])
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
    return result


def regression(model, features, labels) -> tuple[dict[str, float], dict[str, list]]:
    predicted = model.predict(features)
    result = regression_scores(predicted, labels)
    plots = {
        "residuals": [
            {"actual": round(a, 6), "predicted": round(p, 6), "residual": round(a - p, 6)}
            for a, p in zip(labels.tolist(), predicted.tolist(), strict=True)
        ]
    }
    return {k: round(float(v), 6) for k, v in result.items()}, plots


def regression_scores(predicted, labels) -> dict[str, float]:
    from sklearn import metrics as m

    return {
        "r2": m.r2_score(labels, predicted),
        "rmse": m.root_mean_squared_error(labels, predicted),
        "mae": m.mean_absolute_error(labels, predicted),
    }


def compute(task: str, model, features, labels, positive: Any = None):
    """``(metrics, plots)`` of ``model`` on held-out data."""
    if task == "classification":
        return classification(model, features, labels, positive)
    return regression(model, features, labels)


def target_range(train_labels) -> list[float]:
    """``[lowest, highest]`` target value in training: what a regression model has seen."""
    import numpy as np

    return [float(np.nanmin(train_labels)), float(np.nanmax(train_labels))]


def outside(predicted, seen: list[float]):
    """Per prediction: -1 below the range ``seen`` in training, 1 above it, 0 within."""
    import numpy as np

    predicted = np.asarray(predicted, dtype=float)
    return (predicted > seen[1]).astype(int) - (predicted < seen[0]).astype(int)


def out_of_range(predicted, train_labels) -> dict[str, Any]:
    """The predictions outside the range of the target in training (a linear model extrapolates:
    negative prices): how many, their share, how many below and above."""
    low, high = target_range(train_labels)
    side = outside(predicted, [low, high])
    below, above = int((side < 0).sum()), int((side > 0).sum())
    share = (below + above) / len(side) if len(side) else 0.0
    return {
        "rows": below + above,
        "share": round(share, 6),
        "below": below,
        "above": above,
        "range": [low, high],
    }


def trivial(task: str, train_labels):
    """The trivial model fitted on ``train_labels``: class priors (it always predicts the majority
    class) or the mean; it never looks at the features."""
    import numpy as np
    from sklearn.dummy import DummyClassifier, DummyRegressor

    model = DummyClassifier(strategy="prior") if task == "classification" else DummyRegressor(strategy="mean")
    return model.fit(np.zeros((len(train_labels), 1)), train_labels)


def baseline(task: str, train_labels, features, labels, positive: Any = None) -> dict[str, float]:
    """The metrics of the trivial model (``trivial``) on held-out data."""
    return compute(task, trivial(task, train_labels), features, labels, positive)[0]


MOST_ROWS = 20_000  # rows per resample: past this the interval is a little wider than it need be


def resampled_scores(task: str, out, labels, draws, classes=None, positive: Any = None) -> dict[str, Any]:
    """Every metric of ``available`` on each resample at once: ``draws`` is a (resamples x rows)
    matrix of row numbers, ``out`` the model's ``(predicted, scores)``; one array per metric, NaN
    where a resample cannot compute it. Vectorised (confusion counts, ranks): what sklearn's
    functions give on one resample, a hundred times faster over hundreds of them."""
    import numpy as np

    predicted, scores = out
    if task != "classification":
        y, p = np.asarray(labels, dtype=float)[draws], np.asarray(predicted, dtype=float)[draws]
        residual = ((y - p) ** 2).sum(axis=1)
        spread = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        with np.errstate(all="ignore"):
            r2 = np.where(spread > 0, 1 - residual / spread, np.nan)
        rows = draws.shape[1]
        return {"r2": r2, "rmse": np.sqrt(residual / rows), "mae": np.abs(y - p).mean(axis=1)}
    k, index = len(classes), {label: number for number, label in enumerate(classes)}
    y = np.asarray([index.get(label, -1) for label in np.asarray(labels).tolist()])[draws]
    p = np.asarray([index[label] for label in np.asarray(predicted).tolist()])[draws]
    resamples, rows = draws.shape
    cells = (np.arange(resamples)[:, None] * k * k + y * k + p)[y >= 0]
    confusion = np.bincount(cells, minlength=resamples * k * k).reshape(resamples, k, k)
    right = np.diagonal(confusion, axis1=1, axis2=2).astype(float)
    truth, said = confusion.sum(axis=2).astype(float), confusion.sum(axis=1).astype(float)
    with np.errstate(all="ignore"):
        recall = np.where(truth > 0, right / truth, 0.0)
        precision = np.where(said > 0, right / said, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        present = truth > 0
        found: dict[str, Any] = {
            "accuracy": right.sum(axis=1) / rows,
            "balanced_accuracy": np.where(present, recall, 0).sum(axis=1)
            / np.maximum(present.sum(axis=1), 1),
            "f1_macro": f1.mean(axis=1),
        }
        every_class = present.all(axis=1)
        if k == 2:
            c = classes.index(positive)
            found.update(f1=f1[:, c], precision=precision[:, c], recall=recall[:, c])
            found["roc_auc"] = np.where(every_class, _auc(y == c, np.asarray(scores)[:, c][draws]), np.nan)
        else:
            support = truth / truth.sum(axis=1, keepdims=True)
            found.update(
                f1_weighted=(f1 * support).sum(axis=1),
                precision_macro=precision.mean(axis=1),
                recall_macro=recall.mean(axis=1),
            )
            aucs = np.stack([_auc(y == c, np.asarray(scores)[:, c][draws]) for c in range(k)], axis=1)
            found["roc_auc_ovr"] = np.where(every_class, aucs.mean(axis=1), np.nan)
            found["roc_auc_ovr_weighted"] = np.where(every_class, (aucs * support).sum(axis=1), np.nan)
    return found


def _auc(positive, scores):
    """ROC AUC of each row (the Mann-Whitney statistic, ties counted half); NaN without both kinds."""
    import numpy as np
    from scipy.stats import rankdata

    ranks = rankdata(scores, axis=1)
    count = positive.sum(axis=1).astype(float)
    other = positive.shape[1] - count
    with np.errstate(all="ignore"):
        auc = ((ranks * positive).sum(axis=1) - count * (count + 1) / 2) / (count * other)
    return np.where((count > 0) & (other > 0), auc, np.nan)


def bootstrap(
    task: str,
    model,
    trivial,
    features,
    labels,
    names: list[str],
    evidence,
    positive: Any = None,
    primary: str | None = None,
) -> dict[str, list[float]]:
    """The interval of each metric of ``names``: its ``1 - confidence`` and ``confidence``
    percentiles over ``evidence.resamples`` bootstrap resamples of the test rows (seeded), so the
    end a gate reads is one-sided at ``confidence``; and ``"<primary> vs baseline"``, the primary
    metric's lead over the ``trivial`` model on the same resamples. A test split of more than
    ``MOST_ROWS`` rows is resampled that many rows at a time: an interval wider than it need be."""
    import numpy as np

    rows = len(labels)
    rng = np.random.default_rng(evidence.seed)
    draws = rng.integers(0, rows, (evidence.resamples, min(rows, MOST_ROWS)))
    classes = list(model.classes_) if task == "classification" else None

    def scored(estimator) -> dict[str, Any]:
        predicted = np.asarray(estimator.predict(features))
        scores = estimator.predict_proba(features) if classes is not None else None
        return resampled_scores(task, (predicted, scores), labels, draws, classes, positive)

    mine = scored(model)
    samples = {name: mine[name] for name in names if name in mine}
    if primary in mine:
        samples[f"{primary} vs baseline"] = mine[primary] - scored(trivial)[primary]
    low, high = 100 * (1 - evidence.confidence), 100 * evidence.confidence
    found = {}
    for name, values in samples.items():
        kept = values[~np.isnan(values)]
        if len(kept) >= len(values) / 2:  # a metric most resamples cannot compute has no interval
            found[name] = [
                round(float(np.percentile(kept, low)), 6),
                round(float(np.percentile(kept, high)), 6),
            ]
    return found

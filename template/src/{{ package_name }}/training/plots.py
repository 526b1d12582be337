"""Evaluation plots you can open offline: ``reports/plots.html``, one self-contained page.

Reads the plot data the evaluation stage wrote (``paths.plots``: the confusion pairs and the ROC
curve of a classifier, the residuals of a regressor) and ``paths.metrics``, draws them with
matplotlib and embeds the images in the page, so it needs no network (``dvc plots show`` renders
the same data interactively, but its page loads Vega from a CDN).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from ..config import load_params, path, project_root
from ..errors import GateError


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _xy(x, y, labels: tuple[str, str], diagonal: tuple[float, float], scatter: bool = False) -> str:
    """A square x/y figure with the dashed diagonal a model without skill would follow, as PNG."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    if scatter:
        axes.scatter(x, y, s=8, alpha=0.6)
    else:
        axes.plot(x, y)
    axes.plot(diagonal, diagonal, linestyle="--", color="grey")
    axes.set_xlabel(labels[0])
    axes.set_ylabel(labels[1])
    image = _png(figure)
    plt.close(figure)
    return image


def figures(folder: Path) -> dict[str, str]:
    """``{title: base64 PNG}`` for every plot file in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    images = {}
    confusion = folder / "confusion.csv"
    if confusion.is_file():
        pairs = pd.read_csv(confusion, dtype=str)
        matrix = pd.crosstab(pairs["actual"], pairs["predicted"]).reindex(
            index=sorted(set(pairs["actual"]) | set(pairs["predicted"])),
            columns=sorted(set(pairs["actual"]) | set(pairs["predicted"])),
            fill_value=0,
        )
        figure, axes = plt.subplots(figsize=(4 + 0.4 * len(matrix), 3.5 + 0.4 * len(matrix)))
        axes.imshow(matrix.to_numpy(), cmap="Blues")
        axes.set_xticks(range(len(matrix.columns)), matrix.columns, rotation=45, ha="right")
        axes.set_yticks(range(len(matrix.index)), matrix.index)
        darkest = max(1, int(matrix.to_numpy().max()))
        for (row, column), count in pd.DataFrame(matrix.to_numpy()).stack().items():
            colour = "white" if count > darkest / 2 else "black"
            axes.text(column, row, str(count), ha="center", va="center", color=colour)
        axes.set_xlabel("predicted")
        axes.set_ylabel("actual")
        images["Confusion matrix (held-out rows)"] = _png(figure)
        plt.close(figure)
    roc = folder / "roc.csv"
    if roc.is_file():
        curve = pd.read_csv(roc)
        title = "ROC curve (micro-average over the classes when there are more than two)"
        images[title] = _xy(curve["fpr"], curve["tpr"], ("false positive rate", "true positive rate"), (0, 1))
    residuals = folder / "residuals.csv"
    if residuals.is_file():
        points = pd.read_csv(residuals)
        both = points[["actual", "predicted"]]
        diagonal = (both.min().min(), both.max().max())
        title = "Predicted against actual (held-out rows)"
        images[title] = _xy(
            points["actual"], points["predicted"], ("actual", "predicted"), diagonal, scatter=True
        )
    return images


def page(images: dict[str, str], metrics: dict) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(str(name))}</td><td>{value}</td>"
        f"<td>{(metrics.get('baseline') or {}).get(name, '')}</td></tr>"
        for name, value in metrics.items()
        if name != "baseline"
    )
    blocks = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
        for title, data in images.items()
    )
    return (
        "<!doctype html><meta charset='utf-8'><title>Evaluation</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px}</style>"
        "<h1>Evaluation on the held-out rows</h1>"
        f"<table><tr><th>metric</th><th>model</th><th>trivial baseline</th></tr>{rows}</table>{blocks}"
    )


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "plots").parse_args(argv)
    params, root = load_params(), project_root()
    folder, metrics_file = path(params, "plots"), path(params, "metrics")
    if not metrics_file.is_file():
        raise GateError(f"{params['paths']['metrics']} is missing: run the pipeline first (make repro)")
    images = figures(folder)
    out = root / "reports/plots.html"
    out.write_text(page(images, json.loads(metrics_file.read_text(encoding="utf-8"))), encoding="utf-8")
    print(f"{len(images)} plots -> {out.relative_to(root)} (open it in a browser; no network needed)")
    return 0

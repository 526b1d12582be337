"""Data Preparation: clean the validated raw data and split it into train and test sets.

Rows without a target value (unlabelled) are left out of training and evaluation; exact duplicate
rows are dropped (``prepare.drop_duplicates``). The split is stratified by label for classification.
Every column is kept: which ones the model learns from is in the column roles (``paths.columns``).
"""

from __future__ import annotations

from typing import Any

from ..config import load_params, path
from ..errors import DataValidationError, SettingsError, shorten
from .table import read

MIN_LABELLED = 10


def held_out(rows: int, test_size: float) -> int:
    """How many of a class's ``rows`` the split holds out for testing (pandas' ``sample(frac=...)``
    rounds): none of a class with a row or two."""
    return round(rows * test_size)


def prepare(frame, target: str, task: str, settings: dict[str, Any]):
    """Return ``(train, test, unlabelled_rows)``."""
    if target not in frame.columns:
        columns = ", ".join(map(repr, map(str, frame.columns)))
        raise SettingsError(
            f"params.yaml: data.target: {target!r} is not a column of the data; "
            f"its columns: {shorten(columns, 300)}"
        )
    if settings.get("drop_duplicates", True):
        frame = frame.drop_duplicates()
    labelled = frame.dropna(subset=[target]).reset_index(drop=True)
    labels = labelled[target]
    if task == "classification" and labels.dtype.kind == "f" and (labels == labels.round()).all():
        labelled[target] = labels.astype("int64")  # 0/1 read as 0.0/1.0 because of unlabelled rows
    if len(labelled) < MIN_LABELLED:
        raise DataValidationError(
            f"only {len(labelled)} rows have a value in the target column {target!r}: "
            f"at least {MIN_LABELLED} labelled rows are needed to train and evaluate"
        )
    groups = labelled.groupby(target, group_keys=False) if task == "classification" else labelled
    test = groups.sample(frac=settings["test_size"], random_state=settings["seed"]).sort_index()
    return labelled.drop(index=test.index), test, len(frame) - len(labelled)


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "prepare").parse_args(argv)

    params = load_params()
    train, test, unlabelled = prepare(
        read(path(params, "raw"), params), params["data"]["target"], params["task"], params["prepare"]
    )
    for key, frame in (("train", train), ("test", test)):
        out = path(params, key)
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
    note = f"; {unlabelled} rows without a target left out" if unlabelled else ""
    print(f"prepared {len(train)} train / {len(test)} test rows{note}")
    return 0

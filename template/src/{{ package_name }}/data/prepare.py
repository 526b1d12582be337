"""Data Preparation: clean the validated raw data and split it into train and test sets; the
features your own code adds (``derive``).

Rows without a target value (unlabelled) are left out of training and evaluation; exact duplicate
rows are dropped (``prepare.drop_duplicates``). The split is stratified by label for classification.
Every column is kept: which ones the model learns from is in the column roles (``paths.columns``).

Features your code computes from a row go in ``derive`` below, not in the split files (they keep the
raw columns, as a client sends them): it runs wherever rows meet the model (training, evaluation,
fairness, the service, batch scoring, drift monitoring), so each feature is computed one way. The
column roles list its columns beside the raw ones: the first run's ``profile`` gives them a role;
add one you write later there (``profile`` and ``train`` say which).
"""

from __future__ import annotations

from typing import Any

from ..config import load_params, on_cluster, path
from ..errors import DataValidationError, SettingsError, shorten
from .table import read, write

MIN_LABELLED = 10
ROLE_SAMPLE = 100  # rows derive runs on to learn its columns (checked_roles)


def held_out(rows: int, test_size: float) -> int:
    """How many of a class's ``rows`` the split holds out for testing (pandas' ``sample(frac=...)``
    rounds): none of a class with a row or two."""
    return round(rows * test_size)


def derive(frame):
    """The rows of ``frame`` (the raw columns, never the target) with the features your code adds,
    e.g. ``frame.assign(n_missing=frame.isna().sum(axis=1))``. Add columns; leave the raw ones as
    they are (clients send those)."""
    return frame


def features_of(rows):
    """``derive``, as the model's first step calls it (train.py): looked up when called, so the model
    pickles a reference to this function, never a copy of your code."""
    return derive(rows)


def with_features(frame, target: str, adds=None):
    """``frame`` with ``derive``'s columns, which never sees the target (a client does not send it).
    ``adds``: the function that adds them (default: ``derive`` as this module has it now; the
    cluster's workers get the one the stage saw)."""
    rows = frame.drop(columns=[target], errors="ignore")
    out = (adds or derive)(rows)
    missing = [str(c) for c in rows.columns if c not in out.columns]
    if missing or len(out) != len(rows):
        raise SettingsError(
            f"data/prepare.py: derive must return every row and raw column it gets (it dropped "
            f"{shorten(', '.join(map(repr, missing)), 200) or f'{len(rows) - len(out)} rows'})"
        )
    if target in frame.columns:  # back where it was
        out.insert(list(frame.columns).index(target), target, frame[target].to_numpy())
    return out


def checked_roles(params: dict[str, Any], frame) -> dict[str, str]:
    """The column roles (``paths.columns``), checked against ``frame``'s raw columns and the features
    ``derive`` adds to them: one rule for profile, train, evaluate and fairness. Derived on a few rows:
    only the column names count here, and the model's pipeline derives the whole split anyway."""
    from . import roles as column_roles

    target = params["data"]["target"]
    sample = with_features(frame.head(ROLE_SAMPLE), target)
    return column_roles.load(params, [c for c in sample.columns if c != target])


def check_target(columns, target: str) -> None:
    """The target is one of the data's ``columns``, or a SettingsError listing them."""
    if target not in columns:
        shown = ", ".join(map(repr, map(str, columns)))
        raise SettingsError(
            f"params.yaml: data.target: {target!r} is not a column of the data; "
            f"its columns: {shorten(shown, 300)}"
        )


def check_labelled(rows: int, target: str) -> None:
    """Enough ``rows`` have a target value to train and evaluate, or a DataValidationError."""
    if rows < MIN_LABELLED:
        raise DataValidationError(
            f"only {rows} rows have a value in the target column {target!r}: "
            f"at least {MIN_LABELLED} labelled rows are needed to train and evaluate"
        )


def prepare(frame, target: str, task: str, settings: dict[str, Any]):
    """Return ``(train, test, unlabelled_rows)``."""
    check_target(frame.columns, target)
    if settings.get("drop_duplicates", True):
        frame = frame.drop_duplicates()
    labelled = frame.dropna(subset=[target]).reset_index(drop=True)
    labels = labelled[target]
    if task == "classification" and labels.dtype.kind == "f" and (labels == labels.round()).all():
        labelled[target] = labels.astype("int64")  # 0/1 read as 0.0/1.0 because of unlabelled rows
    check_labelled(len(labelled), target)
    groups = labelled.groupby(target, group_keys=False) if task == "classification" else labelled
    test = groups.sample(frac=settings["test_size"], random_state=settings["seed"]).sort_index()
    return labelled.drop(index=test.index), test, len(frame) - len(labelled)


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "prepare").parse_args(argv)

    params = load_params()
    if on_cluster(params):
        from ..cluster import stages

        print(stages.prepare(params))
        return 0
    train, test, unlabelled = prepare(
        read(path(params, "raw"), params), params["data"]["target"], params["task"], params["prepare"]
    )
    for key, frame in (("train", train), ("test", test)):
        write(frame, path(params, key))
    note = f"; {unlabelled} rows without a target left out" if unlabelled else ""
    print(f"prepared {len(train)} train / {len(test)} test rows{note}")
    return 0

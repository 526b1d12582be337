"""Data Preparation: clean the validated raw data and split it into train and test sets."""

from __future__ import annotations

from typing import Any

from ..config import load_params, path


def prepare(frame, target: str, task: str, settings: dict[str, Any]):
    """Return ``(train, test)`` frames; the split is stratified by label for classification."""
    frame = frame.drop(columns=[c for c in settings.get("drop_columns", []) if c in frame.columns])
    if settings.get("drop_duplicates", True):
        frame = frame.drop_duplicates()
    frame = frame.dropna(subset=[target]).reset_index(drop=True)
    groups = frame.groupby(target, group_keys=False) if task == "classification" else frame
    test = groups.sample(frac=settings["test_size"], random_state=settings["seed"]).sort_index()
    return frame.drop(index=test.index), test


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "prepare").parse_args(argv)
    import pandas as pd

    params = load_params()
    train, test = prepare(
        pd.read_csv(path(params, "raw")), params["data"]["target"], params["task"], params["prepare"]
    )
    for key, frame in (("train", train), ("test", test)):
        out = path(params, key)
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
    print(f"prepared {len(train)} train / {len(test)} test rows")
    return 0

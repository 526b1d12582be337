"""Data Preparation: clean the validated raw data and split it into train and test sets."""

from __future__ import annotations

from typing import Any

from ..config import load_params, path, project_root


def prepare(frame, target: str, task: str, settings: dict[str, Any]):
    """Return ``(train, test)`` frames; the split is stratified for classification."""
    from sklearn.model_selection import train_test_split

    frame = frame.drop(columns=[c for c in settings.get("drop_columns", []) if c in frame.columns])
    if settings.get("drop_duplicates", True):
        frame = frame.drop_duplicates()
    frame = frame.dropna(subset=[target]).reset_index(drop=True)
    stratify = frame[target] if task == "classification" else None
    return train_test_split(
        frame, test_size=settings["test_size"], random_state=settings["seed"], stratify=stratify
    )


def main() -> int:
    import pandas as pd

    params, root = load_params(), project_root()
    train, test = prepare(
        pd.read_csv(path(params, "raw")), params["data"]["target"], params["task"], params["prepare"]
    )
    for key, frame in (("train", train), ("test", test)):
        out = path(params, key)
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
    print(f"prepared {len(train)} train / {len(test)} test rows")
    return 0

"""Data Collection: write the raw dataset to ``paths.raw``.

``data.source`` is ``sample`` (a dataset bundled with scikit-learn, no network needed)
or ``csv`` (``data.location``: a local path, relative to the project root, or an http(s) URL).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..config import load_params, on_cluster, path, project_root
from .table import write

SAMPLES = {
    "breast_cancer": "load_breast_cancer",
    "diabetes": "load_diabetes",
}


def _snake(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", str(name)).strip("_").lower()


def load_sample(name: str, target: str):
    """A bundled scikit-learn dataset as one frame with snake_case columns."""
    from sklearn import datasets

    if name not in SAMPLES:
        raise ValueError(f"unknown sample dataset {name!r}: choose one of {sorted(SAMPLES)}")
    bunch = getattr(datasets, SAMPLES[name])(as_frame=True)
    frame = bunch.frame.rename(columns=_snake)
    return frame.rename(columns={"target": target})


def resolve(location: str, root: Path) -> str | Path:
    """``data.location`` as it is read: an http(s) URL as it is, a path against the project root."""
    if re.match(r"^https?://", location):
        return location
    source = Path(location).expanduser()
    return source if source.is_absolute() else root / source


def load_csv(location: str, root: Path, params: dict[str, Any] | None = None):
    """The CSV at ``location``; with ``params``, a classifier's labels as written (``table.read``)."""
    import pandas as pd

    from .table import read

    location = resolve(location, root)
    return read(location, params) if params is not None else pd.read_csv(location)


def collect(data: dict[str, Any], root: Path, params: dict[str, Any] | None = None):
    if data["source"] == "sample":
        return load_sample(data["dataset"], data["target"])
    if data["source"] == "csv":
        return load_csv(data["location"], root, params)
    raise ValueError(f"data.source must be 'sample' or 'csv', not {data['source']!r}")


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "collect").parse_args(argv)
    params, root = load_params(), project_root()
    if on_cluster(params) and params["data"]["source"] == "csv":
        from ..cluster import stages

        print(stages.collect(params))
        return 0
    frame = collect(params["data"], root, params)
    out = path(params, "raw")
    write(frame, out)
    print(f"collected {len(frame)} rows x {frame.shape[1]} columns -> {out.relative_to(root)}")
    return 0

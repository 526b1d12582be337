"""Reading and writing the project's tables (the collected data, the splits, batch inputs).

The stages pass tables as Parquet (``paths.raw``, ``paths.train``, ``paths.test``): columnar, typed,
compressed, read a column at a time, and written in a fraction of CSV's time (at a million rows,
seconds instead of tens of seconds). A path ending in ``.csv`` is read and written as CSV, so a
project whose ``params.yaml`` still names CSV files, and every CSV a user scores, keep working.

pandas reads a CSV column of ``01``, ``02``, ``03`` as the numbers 1, 2, 3, and the service, the
reports and the gate then give back labels the data never had. ``read`` reads the target of a
classification from CSV as text and keeps it as text unless every label is a number written as
pandas writes one (``1``, ``-2``, ``1.0``): those stay numbers, as they always were. Parquet keeps
the type each column was written with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def as_written(values):
    """``values`` (text, missing as NaN) as numbers when each is a number written plainly, else as
    the text itself."""
    import pandas as pd

    def plain(text: str) -> bool:
        try:
            number = float(text)
        except ValueError:
            return False
        return text == repr(number) or (number.is_integer() and text == str(int(number)))

    present = values.dropna()
    if len(present) and all(plain(v) for v in present.tolist()):
        return pd.to_numeric(values)
    return values


def parquet(file) -> bool:
    return Path(str(file)).suffix.lower() in (".parquet", ".pq")


def read_table(file, usecols: list[str] | None = None, nrows: int | None = None):
    """The table at ``file`` as written: Parquet by its suffix, else CSV (``usecols`` and
    ``nrows`` as pandas' read_csv takes them)."""
    import pandas as pd

    if parquet(file):
        # One thread, reading and converting: with pyarrow's thread pool, about one process in
        # three that read Parquet through pandas aborted at exit ("terminate called without an
        # active exception", pyarrow 25, pandas 2.3), after its work was done; a stage that aborts
        # fails under DVC. pandas' read_parquet converts with threads whatever it is told.
        import pyarrow.parquet as pq

        frame = pq.read_table(file, columns=usecols, use_threads=False).to_pandas(use_threads=False)
        return frame.head(nrows) if nrows is not None else frame
    return pd.read_csv(file, usecols=usecols, nrows=nrows)


def read(file, params: dict[str, Any], **options):
    """The table ``file`` as the stages read it: a CSV's classification target as written."""
    import pandas as pd

    target = params["data"]["target"]
    if parquet(file) or params.get("task") != "classification":
        return read_table(file, **options)
    frame = pd.read_csv(file, dtype={target: str}, **options)
    if target in frame.columns:
        frame[target] = as_written(frame[target])
    return frame


def write(frame, file) -> None:
    """``frame`` to ``file``: Parquet by its suffix (a column of text and numbers mixed, as a large
    CSV can give, is written as text), else CSV."""
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    if file.is_dir():  # a Parquet dataset the cluster wrote (cluster/): replaced by the one file
        import shutil

        shutil.rmtree(file)
    if not parquet(file):
        frame.to_csv(file, index=False)
        return
    import pandas as pd

    frame = frame.copy(deep=False)
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True).startswith("mixed"):
            frame[column] = values.map(lambda v: v if isinstance(v, str) or pd.isna(v) else str(v))
    frame.to_parquet(file, index=False)

"""Reading the project's tables (the collected data, the splits): a classifier's labels as the data
writes them.

pandas reads a column of ``01``, ``02``, ``03`` as the numbers 1, 2, 3, and the service, the
reports and the gate then give back labels the data never had. ``read`` reads the target of a
classification as text and keeps it as text unless every label is a number written as pandas
writes one (``1``, ``-2``, ``1.0``): those stay numbers, as they always were.
"""

from __future__ import annotations

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


def read(file, params: dict[str, Any], **options):
    """The CSV ``file`` as pandas reads it, except the target of a classification: as written."""
    import pandas as pd

    target = params["data"]["target"]
    if params.get("task") != "classification":
        return pd.read_csv(file, **options)
    frame = pd.read_csv(file, dtype={target: str}, **options)
    if target in frame.columns:
        frame[target] = as_written(frame[target])
    return frame

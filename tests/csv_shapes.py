"""CSV files shaped like the ones data scientists bring, written with the standard library only.

Each shape mixes the awkward parts a real export has into a learnable problem:

- ``binary``: text labels ("churned"/"stayed", about 1 in 4 churned);
- ``multiclass``: four text labels;
- ``regression``: several text columns, one of them ("neighbourhood") with 36 distinct values.

and every shape also has: an unnamed row-index column (what ``DataFrame.to_csv()`` and R's
``write.csv`` write), an ID column, a date column, a mostly-empty free-text column, a constant
column, column names with spaces, brackets and slashes, missing values in the features, whole rows
of missing measurements, and rows whose target is missing (unlabelled).
"""

from __future__ import annotations

import csv
import datetime
import math
import random
from pathlib import Path

# shape -> (target column, sensitive feature for the responsible-AI check, ml_task)
SHAPES = {
    "binary": ("churn", "region", "classification"),
    "multiclass": ("segment", "region", "classification"),
    "regression": ("price", "property type", "regression"),
}
# The columns a model must not learn from, and the role the profiler should give them.
LEFT_OUT = {
    "": "index",  # pandas reads an unnamed header cell as "Unnamed: 0"
    "customer id": "id",
    "notes": "text",
    "source": "constant",
}
DATE = "signup date"
NEIGHBOURHOODS = [f"district {i:02d}" for i in range(36)]
NOTES = ["called support twice", "asked about a discount", "moved house", "prefers email contact"]


def _row(shape: str, index: int, rng: random.Random) -> dict:
    tenure = rng.randint(1, 72)
    charge = round(rng.uniform(20, 120), 2)
    region = rng.choice(["north", "south", "east", "west"])
    plan = rng.choice(["basic", "plus", "premium"])
    day = datetime.date(2021, 1, 1) + datetime.timedelta(days=rng.randint(0, 1400))
    row = {
        "": index,
        "customer id": f"C{100000 + index * 7}",
        DATE: day.isoformat(),
        "tenure (months)": tenure,
        "monthly charge/$": charge,
        "plan": plan,
        "region": region,
        "notes": f"{rng.choice(NOTES)} ({day:%d %B})" if rng.random() < 0.08 else "",
        "source": "web",
    }
    if shape == "binary":
        risk = 0.6 - 0.06 * tenure + 0.025 * (charge - 70) + (0.8 if plan == "basic" else 0.0)
        churned = rng.random() < 1 / (1 + math.exp(-risk))
        row["churn"] = "churned" if churned else "stayed"
    elif shape == "multiclass":
        score = tenure / 24 + charge / 40 + {"basic": 0, "plus": 1, "premium": 2}[plan] + rng.gauss(0, 0.35)
        row["segment"] = ["bronze", "silver", "gold", "platinum"][min(3, max(0, int(score / 2.2)))]
    else:
        neighbourhood = rng.randrange(len(NEIGHBOURHOODS))
        kind = rng.choice(["flat", "house", "studio"])
        rooms = rng.randint(1, 6)
        area = round(rooms * rng.uniform(18, 30), 1)
        row.update(
            {
                "neighbourhood": NEIGHBOURHOODS[neighbourhood],
                "property type": kind,
                "rooms [count]": rooms,
                "area/m2": area,
            }
        )
        base = 1500 * area + 4000 * neighbourhood + {"flat": 0, "house": 60000, "studio": -20000}[kind]
        row["price"] = round(base + rng.gauss(0, 15000), 0)
        del row["tenure (months)"], row["plan"]
    return row


def write(shape: str, target_file: Path, rows: int = 1000, seed: int = 7) -> Path:
    """Write ``rows`` rows of ``shape`` to ``target_file``; returns the file."""
    rng = random.Random(seed)
    target, _, _ = SHAPES[shape]
    records = [_row(shape, i, rng) for i in range(rows)]
    measurements = [c for c in records[0] if c not in ("", "customer id", DATE, "source", target)]
    for i, record in enumerate(records):
        if i % 97 == 5:  # a whole row of missing measurements
            record.update(dict.fromkeys(measurements, ""))
        elif rng.random() < 0.05:  # a gap in one feature
            record[rng.choice(measurements)] = ""
        if i % 41 == 3:  # unlabelled rows
            record[target] = ""
    target_file.parent.mkdir(parents=True, exist_ok=True)
    with target_file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return target_file

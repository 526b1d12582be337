"""The tabular pipeline at size: `dvc repro` against a bare script, each stage's time and memory.

    make env && uv run python bench/scale.py [--rows 10000,100000,1000000] [--out bench/scale-results.json]

Writes a diamonds-like regression table (price from carat, cut, colour, clarity and the stone's
measures: 6 numeric and 3 categorical columns, a few duplicate rows; numpy, seeded) of each size,
renders an mlops project on it (`data_source=csv`, target `price`), sets it up once (`make setup`)
and, for each size, in the project's environment:

1. **`dvc repro`** from scratch (the column roles and the data contract profiled again for each
   size; the first run's bounds in `business/kpis.yaml` kept from the smallest), timed whole;
2. **each stage on its own** (`python -m <package> <stage>`, in pipeline order): time and peak
   memory (the largest resident set of the stage's process);
3. **a bare script doing the same work**: read the CSV, drop duplicates, split 80/20, one-hot and
   scale, fit the same estimator (Ridge; with `--engine dask`, the same LightGBM on one machine,
   no cluster), predict, R² and MAE; time and peak memory. Its ratio to
   `dvc repro` is what the pipeline's own work costs (validation, tracking, the gate, DVC);
4. **`make drift`'s work** on the test split as production data (`drift --current`): time and
   peak memory, with `drift.sample_rows` as shipped (100,000) and on every row; the largest
   difference of a column's drift score between the two, and whether they drift the same columns.

Each size runs once (the sizes are the repeats: the ratio is read at each); the table gives the
ratio next to its two timings.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import BIN, OUTPUTS, REPO, Bench, machine, package_name, publish  # noqa: E402

STAGES = ("collect", "profile", "validate", "prepare", "train", "evaluate")

GENERATE = """
import sys
import numpy as np
import pandas as pd

rows, out = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(7)
carat = np.clip(rng.gamma(2.0, 0.4, rows), 0.2, 5.0).round(2)
cuts, colours, clarities = ["Fair", "Good", "Very Good", "Premium", "Ideal"], list("DEFGHIJ"), [
    "I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"]
cut = rng.choice(len(cuts), rows, p=[0.03, 0.09, 0.22, 0.26, 0.40])
colour = rng.integers(0, len(colours), rows)
clarity = rng.choice(len(clarities), rows, p=[0.02, 0.17, 0.24, 0.23, 0.15, 0.09, 0.07, 0.03])
x = (6.4 * carat ** (1 / 3) + rng.normal(0, 0.05, rows)).round(2)
frame = pd.DataFrame({
    "carat": carat,
    "cut": np.array(cuts)[cut],
    "color": np.array(colours)[colour],
    "clarity": np.array(clarities)[clarity],
    "depth": rng.normal(61.7, 1.4, rows).round(1),
    "table": rng.normal(57.4, 2.2, rows).round(0),
    "x": x,
    "y": (x + rng.normal(0, 0.04, rows)).round(2),
    "z": (x * 0.618 + rng.normal(0, 0.03, rows)).round(2),
})
log_price = 8.3 + 1.75 * np.log(carat) + 0.06 * cut - 0.08 * colour + 0.09 * clarity + rng.normal(0, 0.15, rows)
frame["price"] = np.exp(log_price).round(0)
frame = pd.concat([frame, frame.sample(n=max(rows // 200, 1), random_state=1)], ignore_index=True)
frame.to_csv(out, index=False)
"""

PEAK = """
import resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:])
elapsed = time.perf_counter() - started
print(f"{elapsed:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} {done.returncode}")
"""

BARE = """
import sys
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

frame = pd.read_csv(sys.argv[1]).drop_duplicates()
train, test = train_test_split(frame, test_size=0.2, random_state=42)
features = [c for c in frame.columns if c != "price"]
categorical = [c for c in features if frame[c].dtype == object]
numeric = [c for c in features if c not in categorical]
model = Pipeline([
    ("columns", ColumnTransformer([
        ("numeric", StandardScaler(), numeric),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
    ])),
    ("model", Ridge(alpha=1.0) if sys.argv[2] == "ridge" else __import__("lightgbm").LGBMRegressor(
        n_estimators=200, learning_rate=0.05, num_leaves=31, random_state=42, verbose=-1)),
]).fit(train[features], train["price"])
predicted = model.predict(test[features])
print(r2_score(test["price"], predicted), mean_absolute_error(test["price"], predicted))
"""


class Scale(Bench):
    outputs = (
        *OUTPUTS,
        "logs",
        "data/columns.yaml",  # profiled again for each size: a contract of 100,000 rows is too
        "data/expectations",  # narrow for a million (validate rightly fails on a larger price)
    )

    def peak(self, cmd: list[str], project: Path) -> dict[str, float]:
        """``cmd`` run under a wrapper that reports its time and its largest resident set."""
        python = str(project / ".venv" / "bin" / "python")
        _, done = self.run([python, "-c", PEAK, *cmd], project)
        seconds, megabytes, code = done.stdout.strip().splitlines()[-1].split()
        if code != "0":
            sys.exit(
                f"bench: `{' '.join(cmd)}` failed ({code}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return {"s": round(float(seconds), 2), "peak_mb": int(float(megabytes))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000,1000000", help="comma-separated sizes")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--engine",
        choices=("local", "dask"),
        default="local",
        help="the project's engine answer (dask: a LocalCluster per stage, LightGBM; the bare script "
        "then fits the same LightGBM on one machine)",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.rows.split(",")]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as folder:
        work = Path(folder)
        bench = Scale(work, 1)
        data, project = work / "diamonds.csv", work / "project"
        bench.progress("render an mlops project on a CSV and set it up (make setup)")
        answers = [
            "profile=mlops",
            "ml_task=regression",
            "data_source=csv",
            f"csv_location={data}",
            "target_column=price",
            f"engine={args.engine}",
        ]
        data_flags = [flag for answer in answers for flag in ("--data", answer)]
        cmd = [
            str(BIN / "copier"),
            "copy",
            "--defaults",
            "--quiet",
            "--vcs-ref",
            "HEAD",
            *data_flags,
            str(REPO),
            str(project),
        ]
        bench.timed(cmd, work)
        bench.timed(["make", "setup"], project)
        python = str(project / ".venv" / "bin" / "python")
        pkg = package_name(project)
        (project / "bare.py").write_text(BARE)
        for rows in sizes:
            bench.progress(f"{rows:,} rows: data, dvc repro, each stage, the bare script, drift")
            bench.timed([python, "-c", GENERATE, str(rows), str(data)], work)
            bench.clean(project)
            repro = bench.peak(["uv", "run", "--frozen", "dvc", "repro", "--quiet"], project)
            stages = {stage: bench.peak([python, "-m", pkg, stage], project) for stage in STAGES}
            estimator = "ridge" if args.engine == "local" else "lightgbm"
            bare = bench.peak([python, "bare.py", str(data), estimator], project)
            paths = f"import json; from {pkg}.config import load_params; print(json.dumps(load_params()['paths']))"
            test = project / json.loads(bench.run([python, "-c", paths], project)[1].stdout)["test"]
            drift = bench.peak([python, "-m", pkg, "drift", "--current", str(test)], project)
            sampled = json.loads((project / "reports" / "drift.json").read_text())
            params_file = project / "params.yaml"
            kept = params_file.read_text()
            params_file.write_text(kept.replace("sample_rows: 100000", "sample_rows: 1000000000"))
            whole = bench.peak([python, "-m", pkg, "drift", "--current", str(test)], project)
            params_file.write_text(kept)
            every = json.loads((project / "reports" / "drift.json").read_text())
            drift["every_row"] = whole
            drift["largest_score_difference"] = round(
                max(
                    abs(sampled["columns"][c]["score"] - every["columns"][c]["score"])
                    for c in every["columns"]
                ),
                4,
            )
            drift["same_verdict"] = sampled["drifted_columns"] == every["drifted_columns"]
            results[str(rows)] = {
                "repro": repro,
                "stages": stages,
                "bare": bare,
                "ratio": round(repro["s"] / bare["s"], 2),
                "drift": drift,
                "data_mb": round(data.stat().st_size / 2**20, 1),
            }
            print(json.dumps({rows: results[str(rows)]}), file=sys.stderr)
        info = machine(project)
        shutil.rmtree(project / ".venv", ignore_errors=True)
    lines = [
        "| rows | `dvc repro` (s) | bare script (s) | ratio | drift, sampled / every row (s, peak MB; largest score difference) | "
        + " | ".join(STAGES)
        + " |",
        "|---:|---:|---:|---:|---:|" + "---:|" * len(STAGES),
    ]
    for rows, found in results.items():
        stages = " | ".join(
            f"{found['stages'][s]['s']} s, {found['stages'][s]['peak_mb']} MB" for s in STAGES
        )
        lines.append(
            f"| {int(rows):,} | {found['repro']['s']} | {found['bare']['s']} ({found['bare']['peak_mb']} MB) | "
            f"{found['ratio']}x | {found['drift']['s']} s, {found['drift']['peak_mb']} MB / "
            f"{found['drift']['every_row']['s']} s, {found['drift']['every_row']['peak_mb']} MB "
            f"({found['drift']['largest_score_difference']}) | {stages} |"
        )
    return publish(lines, results, info, args.out)


if __name__ == "__main__":
    raise SystemExit(main())

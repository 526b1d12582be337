"""The tabular gate's evidence: what the bootstrap intervals cost, and what they catch.

    make env && uv run python bench/gate.py [--repeats N] [--out bench/gate-results.json]

Renders the default project (mlops, the bundled classification sample), sets it up (`make setup`)
and, in its environment:

1. **Cost**: the gate on held-out splits of 100, 1,000, 20,000 and 200,000 rows (a logistic model
   of synthetic data), with its intervals (200 resamples, what `evaluate` runs) and without (the
   point values alone), side by side in each repeat; medians and the ratio.
2. **What it catches**: models trained on shuffled labels, 20 shuffles each on 63 and 150 rows of
   synthetic data (the generated tests' `judged` helper): how many pass the thresholds alone, the
   intervals with the row minimums waived, and the whole gate.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import Bench, machine, package_name, publish  # noqa: E402

MEASURE = """
import json, statistics, sys, time
from pathlib import Path
import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

pkg, repeats = sys.argv[1], int(sys.argv[2])
from importlib import import_module
metrics = import_module(f"{pkg}.training.metrics")
gates = import_module(f"{pkg}.gates")
evaluate = import_module(f"{pkg}.training.evaluate")
config = import_module(f"{pkg}.config")
results = {"cost": {}, "shuffled": {}}
kpis = {"primary_metric": "roc_auc", "thresholds": {"accuracy": {"min": 0.6}, "f1": {"min": 0.6}, "roc_auc": {"min": 0.6}},
        "baseline_margin": 0.05}
for rows in (100, 1000, 20000, 200000):
    x, y = make_classification(n_samples=rows + 2000, n_features=8, random_state=0)
    model = LogisticRegression(max_iter=300).fit(x[:2000], y[:2000])
    trivial = metrics.trivial("classification", y[:2000])
    xt, yt = x[2000:], y[2000:]
    import pandas as pd
    labels = pd.Series(yt)
    point, weighed = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        found, _ = metrics.compute("classification", model, xt, labels, 1)
        found["baseline"] = metrics.compute("classification", trivial, xt, labels, 1)[0]
        gates.gate(found, kpis)
        point.append(time.perf_counter() - t)
        t = time.perf_counter()
        found, _ = metrics.compute("classification", model, xt, labels, 1)
        found["baseline"] = metrics.compute("classification", trivial, xt, labels, 1)[0]
        evaluate.judge(kpis, "classification", model, trivial, xt, labels, found, 1)
        weighed.append(time.perf_counter() - t)
    results["cost"][rows] = {"point_s": round(statistics.median(point), 4), "weighed_s": round(statistics.median(weighed), 4),
                             "ratio": round(statistics.median(weighed) / statistics.median(point), 2)}

sys.path.insert(0, ".")
from tests.conftest import synthetic
from tests.test_training import LENIENT, judged
params = config.load_params()
for rows, held in ((63, 12), (150, 30)):
    frame = synthetic(params["task"], params["data"]["target"], rows=rows, seed=3)
    waived = {**LENIENT, "evidence": {"min_test_rows": 1, "min_class_rows": 1}}
    alone = intervals = whole = 0
    for seed in range(20):
        verdict, points = judged(params, frame, waived, shuffle=seed, test_rows=held)
        alone += points
        intervals += verdict["passed"]
        whole += judged(params, frame, LENIENT, shuffle=seed, test_rows=held)[0]["passed"]
    results["shuffled"][rows] = {"held_out": held, "of": 20, "thresholds_alone": alone, "intervals_only": intervals, "gate": whole}
print(json.dumps(results))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each cost measurement")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gate-bench-") as folder:
        work = Path(folder)
        bench = Bench(work, 1)
        project = work / "project"
        bench.progress("render and set up the default project (make setup)")
        bench.render(project)
        bench.timed(["make", "setup"], project)
        (project / "measure.py").write_text(MEASURE)
        bench.progress("measure: the gate's cost with and without intervals, shuffled labels")
        python = str(project / ".venv" / "bin" / "python")
        _, done = bench.run([python, "measure.py", package_name(project), str(args.repeats)], project)
        results = json.loads(done.stdout.strip().splitlines()[-1])
        info = machine(project)
    lines = ["| held-out rows | point values (s) | with intervals (s) | ratio |", "|---:|---:|---:|---:|"]
    for rows, cost in results["cost"].items():
        lines.append(f"| {int(rows):,} | {cost['point_s']} | {cost['weighed_s']} | {cost['ratio']}x |")
    lines += [
        "",
        "| rows (held out) | shuffled models passing: thresholds alone | intervals only | the gate |",
        "|---|---:|---:|---:|",
    ]
    for rows, found in results["shuffled"].items():
        lines.append(
            f"| {rows} ({found['held_out']}) | {found['thresholds_alone']} of {found['of']} | "
            f"{found['intervals_only']} of {found['of']} | {found['gate']} of {found['of']} |"
        )
    return publish(lines, results, info, args.out)


if __name__ == "__main__":
    raise SystemExit(main())

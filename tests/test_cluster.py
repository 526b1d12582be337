"""The Dask engine (answer `engine: dask`): a generated project's pipeline on real Dask clusters.

The stages start a LocalCluster of worker processes each by default; then the same project runs on
a cluster started apart with Dask's own command line (`dask scheduler`, `dask worker`), named by
`DASK_SCHEDULER_ADDRESS`, as a team with a cluster would. The data: a CSV of 30,000 rows with
missing values, a text column and three zero-padded labels, which stay as written.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from .conftest import make_setup, registry, render, run, table_rows

ROWS = 30_000
DATA = f"""
import sys
import numpy as np
import pandas as pd

rng = np.random.default_rng(7)
n = {ROWS}
frame = pd.DataFrame({{
    "tenure": rng.integers(0, 72, n).astype(float),
    "spend": rng.gamma(2.0, 30.0, n).round(2),
    "plan": rng.choice(["basic", "plus", "pro"], n),
    "visits": rng.poisson(4, n).astype(float),
}})
frame.loc[rng.random(n) < 0.05, "spend"] = np.nan
score = frame["tenure"] / 24 + frame["plan"].map({{"basic": 0, "plus": 1, "pro": 2}}) + rng.normal(0, 0.4, n)
frame["label"] = np.where(score < 1.2, "01", np.where(score < 2.6, "02", "03"))
frame.to_csv(sys.argv[1], index=False)
"""


@pytest.fixture(scope="module")
def cluster_project(tmp_path_factory, project_env, shared_venv):
    root = render(
        tmp_path_factory.mktemp("cluster") / "churn-at-scale",
        project_name="Churn at Scale",
        engine="dask",
        data_source="csv",
        csv_location="data/input.csv",
        target_column="label",
    )
    make_setup(root, project_env)
    (root / "data").mkdir(exist_ok=True)
    run([str(shared_venv / "bin/python"), "-c", DATA, str(root / "data/input.csv")], root, project_env)
    return root


def test_the_pipeline_runs_on_a_local_cluster_and_its_model_serves_as_any(cluster_project, project_env):
    root = cluster_project
    done = run(["make", "repro"], root, project_env)
    for line in ("collected 30000 rows x 5 columns on 2 workers", "validated on", "prepared ", "trained on "):
        assert line in done.stdout, done.stdout
    assert done.stdout.count("on 2 workers, 2 threads") == 4  # collect, validate, prepare, train
    train = root / "data/prepared/train.parquet"
    assert train.is_dir() and len(list(train.glob("*.parquet"))) >= 1
    gate = json.loads((root / "reports/gate.json").read_text())
    assert gate["passed"] is True and gate["classes"] == ["01", "02", "03"], gate
    assert registry(root)["aliases"] == {("churn-at-scale", "challenger"): 1}
    # Batch scoring reads the test split's folder; the labels come back as written.
    run(
        ["make", "score", "INPUT=data/prepared/test.parquet", "OUTPUT=reports/scored.parquet"],
        root,
        project_env,
    )
    scored = table_rows(root, project_env, "reports/scored.parquet")
    assert len(scored) == len(table_rows(root, project_env))
    assert {row["prediction"] for row in scored} <= {"01", "02", "03"}
    again = run(["uv", "run", "--frozen", "dvc", "repro"], root, project_env)
    assert "Running stage" not in again.stdout


def test_a_cluster_started_apart_is_used_by_address(cluster_project, project_env, tmp_path):
    root, scheduler_file = cluster_project, tmp_path / "scheduler.json"
    dask = ["uv", "run", "--frozen", "dask"]
    common = {"cwd": root, "env": project_env, "stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT}
    processes = [
        subprocess.Popen(
            [
                *dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            **common,
        )
    ]
    try:
        for _ in range(300):
            if scheduler_file.is_file():
                break
            time.sleep(0.1)
        processes.append(
            subprocess.Popen(
                [
                    *dask,
                    "worker",
                    "--scheduler-file",
                    str(scheduler_file),
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "2",
                    "--no-dashboard",
                ],
                **common,
            )
        )
        address = json.loads(scheduler_file.read_text())["address"]
        wait = f"from dask.distributed import Client; Client({address!r}, timeout=60).wait_for_workers(1, timeout=60)"
        run(["uv", "run", "--frozen", "python", "-c", wait], root, project_env)
        env = {**project_env, "DASK_SCHEDULER_ADDRESS": address}
        done = run(["uv", "run", "--frozen", "dvc", "repro", "--force", "--downstream", "prepare"], root, env)
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(30)
    assert done.stdout.count("on 1 worker, 2 threads") == 2, done.stdout  # prepare and train
    assert json.loads((root / "reports/gate.json").read_text())["passed"] is True


def test_the_projects_own_tests_pass_on_the_dask_engine(cluster_project, project_env):
    """The whole generated suite, `make test` as a user runs it: test_cluster.py checks the engine's
    settings, a scheduler named by address and a dataset of several partitions; the pipeline,
    serving and monitoring tests run their stages on one cluster the session starts (each stage
    starting its own is what `make repro` does, in the tests above)."""
    done = run(["make", "test"], cluster_project, project_env)
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    if (cluster_project / "data/expectations/raw.json").is_file():  # the first run has profiled it
        assert "skipped" not in summary, done.stdout[-3000:]

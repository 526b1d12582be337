"""Generated projects for real: install, lint, their own tests, `dvc repro`, and the gates failing.

Every project syncs into one shared environment (see ``project_env``), so only the first
install costs real time.
"""

from __future__ import annotations

import http.server
import json
import random
import sqlite3
import threading
from functools import partial
from pathlib import Path

import pytest
import yaml

from .conftest import render, run

pytestmark = pytest.mark.slow


def setup_project(root: Path, env) -> Path:
    run(["make", "setup"], root, env)
    run(["git", "add", "--all"], root, env)
    run(["git", "commit", "--quiet", "--no-verify", "-m", "Generated"], root, env)
    return root


def registry(root: Path) -> dict:
    """Model versions and aliases, read straight from the embedded MLflow store."""
    with sqlite3.connect(root / "mlflow.db") as db:
        versions = db.execute("SELECT name, version FROM model_versions ORDER BY version").fetchall()
        aliases = dict(db.execute("SELECT alias, version FROM registered_model_aliases").fetchall())
        gates = dict(
            db.execute("SELECT version, value FROM model_version_tags WHERE key = 'quality_gate'").fetchall()
        )
    return {"versions": versions, "aliases": aliases, "gates": gates}


def run_tags(root: Path) -> dict:
    with sqlite3.connect(root / "mlflow.db") as db:
        return dict(db.execute("SELECT key, value FROM tags").fetchall())


def read_json(path: Path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def default_project(tmp_path_factory, project_env):
    return setup_project(render(tmp_path_factory.mktemp("default") / "my-ml-project"), project_env)


def regression_csv(rows: int = 400, seed: int = 7) -> str:
    """A small tabular dataset whose target depends linearly on the features, plus noise."""
    rng = random.Random(seed)
    lines = ["age,bmi,bp,glucose,progression"]
    for _ in range(rows):
        age, bmi, bp, glucose = (
            rng.uniform(20, 80),
            rng.uniform(18, 40),
            rng.uniform(60, 120),
            rng.uniform(70, 200),
        )
        target = 2.0 * age + 6.0 * bmi + 0.8 * bp + 0.5 * glucose + rng.gauss(0, 15)
        lines.append(f"{age:.2f},{bmi:.2f},{bp:.1f},{glucose:.1f},{target:.2f}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def csv_server(tmp_path_factory):
    """A real HTTP server on 127.0.0.1 serving a regression CSV."""
    folder = tmp_path_factory.mktemp("served")
    (folder / "progression.csv").write_text(regression_csv())
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def csv_project(tmp_path_factory, project_env, csv_server):
    _, url = csv_server
    root = render(
        tmp_path_factory.mktemp("csv") / "progression",
        ml_task="regression",
        data_source="csv",
        csv_location=f"{url}/progression.csv",
        target_column="progression",
    )
    return setup_project(root, project_env)


def test_default_project_lints_and_passes_its_own_tests(default_project, project_env):
    run(["make", "test"], default_project, project_env)
    hooks = run(["uv", "run", "--frozen", "pre-commit", "run", "--all-files"], default_project, project_env)
    assert "Failed" not in hooks.stdout


def test_default_pipeline_runs_tracks_registers_and_is_then_a_no_op(default_project, project_env):
    root = default_project
    run(["make", "repro"], root, project_env)
    assert read_json(root / "reports/validation.json")["success"] is True
    metrics = read_json(root / "reports/metrics.json")
    assert set(metrics) == {"accuracy", "f1", "roc_auc"}
    assert read_json(root / "reports/gate.json")["passed"] is True
    confusion = (root / "reports/plots/confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and len(confusion) > 100
    roc = (root / "reports/plots/roc.csv").read_text().splitlines()
    assert roc[0] == "fpr,tpr" and roc[1] == "0.0,0.0" and roc[-1] == "1.0,1.0"
    state = registry(root)
    assert state["versions"] == [("my-ml-project", 1)]
    assert state["aliases"] == {"challenger": 1}
    tags = run_tags(root)
    assert len(tags["git_commit"]) == 40
    assert len(tags["dvc_lock_sha256"]) == 64
    assert tags["quality_gate"] == "passed"

    lock = (root / "dvc.lock").read_text()
    again = run(["uv", "run", "--frozen", "dvc", "repro"], root, project_env)
    assert "Data and pipelines are up to date" in again.stdout
    assert "Running stage" not in again.stdout
    assert (root / "dvc.lock").read_text() == lock
    assert registry(root)["versions"] == [("my-ml-project", 1)]

    run(["make", "promote"], root, project_env)
    assert registry(root)["aliases"] == {"challenger": 1, "champion": 1}


def test_shipped_sample_suite_is_what_the_profiler_writes(default_project, project_env):
    suite = default_project / "data/expectations/raw.json"
    shipped = suite.read_text()
    run(["make", "suite"], default_project, project_env)
    assert suite.read_text() == shipped


def test_unreachable_thresholds_fail_the_quality_gate_and_register_nothing(default_project, project_env):
    root = default_project
    before = registry(root)
    kpis_file = root / "business/kpis.yaml"
    original = kpis_file.read_text()
    kpis = yaml.safe_load(original)
    kpis["thresholds"]["roc_auc"] = {"min": 1.01}
    kpis_file.write_text(yaml.safe_dump(kpis))
    try:
        failed = run(["uv", "run", "--frozen", "dvc", "repro"], root, project_env, ok=False)
    finally:
        kpis_file.write_text(original)
    assert failed.returncode != 0
    assert "roc_auc" in failed.stderr and "requires >= 1.01" in failed.stderr
    assert "nothing was registered" in failed.stderr
    assert read_json(root / "reports/gate.json")["passed"] is False
    assert registry(root) == before


def test_regression_project_from_a_csv_url(csv_project, project_env):
    root = csv_project
    run(["make", "test"], root, project_env)
    run(["make", "repro"], root, project_env)
    assert set(read_json(root / "reports/metrics.json")) == {"r2", "rmse", "mae"}
    assert read_json(root / "reports/gate.json")["passed"] is True
    residuals = (root / "reports/plots/residuals.csv").read_text().splitlines()
    assert residuals[0] == "actual,predicted,residual" and len(residuals) > 50
    assert registry(root)["aliases"] == {"challenger": 1}
    again = run(["uv", "run", "--frozen", "dvc", "repro"], root, project_env)
    assert "Running stage" not in again.stdout

    # The starter suite only knows the target; profile the full contract from the data.
    starter = len(read_json(root / "data/expectations/raw.json")["expectations"])
    run(["make", "suite"], root, project_env)
    assert len(read_json(root / "data/expectations/raw.json")["expectations"]) > starter
    rerun = run(["uv", "run", "--frozen", "dvc", "repro"], root, project_env)
    assert "Running stage 'validate'" in rerun.stdout and "Running stage 'train'" not in rerun.stdout
    run(["git", "commit", "--quiet", "--no-verify", "-am", "Data contract"], root, project_env)


def test_corrupted_input_fails_validation_and_registers_nothing(csv_project, csv_server, project_env):
    root = csv_project
    folder, _ = csv_server
    served = folder / "progression.csv"
    lines = served.read_text().splitlines()
    header = lines[0].split(",")
    bmi = header.index("bmi")
    corrupted = [lines[0]]
    for number, line in enumerate(lines[1:]):
        cells = line.split(",")
        if number < 5:
            cells[bmi] = "-99.5"
            cells[header.index("progression")] = ""
        corrupted.append(",".join(cells))
    served.write_text("\n".join(corrupted) + "\n")
    before = registry(root)
    # New data arrives: force a fresh collect, as a scheduled retraining would.
    failed = run(["uv", "run", "--frozen", "dvc", "repro", "--force"], root, project_env, ok=False)
    assert failed.returncode != 0
    assert "Running stage 'prepare'" not in failed.stdout
    report = failed.stderr
    assert "expect_column_values_to_be_between on column 'bmi'" in report
    assert "-99.5" in report
    assert "expect_column_values_to_not_be_null on column 'progression'" in report
    summary = read_json(root / "reports/validation.json")
    assert summary["success"] is False
    assert {f["column"] for f in summary["failures"]} >= {"bmi", "progression"}
    assert registry(root) == before

"""Generated projects for real: set-up, lint, their own tests, `dvc repro`, the MLflow registry,
and every gate shown to fail. Then a trusted copy (`copier update`: test_update.py).

Every project syncs into one shared environment (``project_env``), so only the first install
costs real time. Tests of one project run in file order and share it (module-scoped fixtures);
a test that breaks something restores it and checks `dvc status` is clean again.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import sqlite3
import threading
import time
from contextlib import closing
from functools import partial
from pathlib import Path

import pytest
import yaml

from .conftest import REPO_ROOT, files_of, git, make_setup, registry, render, run, table_rows

pytestmark = pytest.mark.slow

STAGES = ("collect", "profile", "validate", "prepare", "train", "evaluate")
UP_TO_DATE = "Data and pipelines are up to date"


def read_json(path: Path):
    return json.loads(path.read_text())


def commit_all(root: Path, env: dict, message: str) -> None:
    run(["git", "add", "--all"], root, env)
    run(["git", "commit", "--quiet", "--no-verify", "-m", message], root, env)


def dvc(root: Path, env: dict, *args: str, ok: bool = True):
    return run(["uv", "run", "--frozen", "dvc", *args], root, env, ok=ok)


def runs(root: Path) -> dict[str, str]:
    """MLflow run id -> its quality_gate tag."""
    with closing(sqlite3.connect(root / "mlflow.db")) as db:
        ids = [run_id for (run_id,) in db.execute("SELECT run_uuid FROM runs")]
        gates = dict(db.execute("SELECT run_uuid, value FROM tags WHERE key = 'quality_gate'").fetchall())
    return {run_id: gates.get(run_id, "") for run_id in ids}


def run_tags(root: Path, run_id: str) -> dict[str, str]:
    with closing(sqlite3.connect(root / "mlflow.db")) as db:
        return dict(db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)).fetchall())


def assert_clean(root: Path, env: dict) -> None:
    """Workspace back to the committed, reproduced state."""
    assert UP_TO_DATE in dvc(root, env, "status").stdout
    assert run(["git", "status", "--porcelain"], root, env).stdout == ""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- default answers
@pytest.fixture(scope="module")
def default_project(tmp_path_factory, project_env) -> Path:
    """Default answers, rendered inside another git repository, set up as the README says."""
    workspace = tmp_path_factory.mktemp("workspace")
    # e.g. a monorepo: `make setup` must still give the project its own repository.
    git(workspace, "init", "--quiet")
    root = render(workspace / "my-ml-project")
    make_setup(root, project_env)
    commit_all(root, project_env, "Generated from the template")
    return root


@pytest.fixture(scope="module")
def default_repro(default_project, project_env):
    """`make repro` from scratch, then commit what git tracks (dvc.lock, reports), as a user would."""
    done = run(["make", "repro"], default_project, project_env)
    commit_all(default_project, project_env, "Run the pipeline")
    return done


def test_setup_creates_the_projects_own_repo_lock_and_hook(default_project, project_env):
    root = default_project
    toplevel = run(["git", "rev-parse", "--show-toplevel"], root, project_env).stdout.strip()
    assert Path(toplevel) == root.resolve()
    assert (root / "uv.lock").is_file()
    assert "pre-commit" in (root / ".git/hooks/pre-commit").read_text()
    assert run(["git", "rev-list", "--count", "HEAD"], root, project_env).stdout.strip() == "1"


def test_reserved_package_names_cover_the_projects_real_environment(default_project, shared_venv):
    """copier.yml refuses package names that would shadow a module: the list it carries
    (scripts/reserved_names.py) must hold every module of the standard library and of a generated
    project's installed dependencies."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("reserved_names", REPO_ROOT / "scripts/reserved_names.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    listed = set(
        re.search(r"set reserved = (\[.*?\])", (REPO_ROOT / "copier.yml").read_text())[1][2:-2].split('", "')
    )
    missing = set(module.reserved(shared_venv)) - listed - {"my_ml_project"}
    assert not missing, f"run: python scripts/reserved_names.py <venv> --write ({sorted(missing)[:10]})"


def test_lint_passes_and_fails_on_bad_code(default_project, project_env):
    root = default_project
    run(["make", "lint"], root, project_env)
    sloppy = root / "src/my_ml_project/sloppy.py"
    sloppy.write_text("import os\nx=1\n")
    try:
        failed = run(["make", "lint"], root, project_env, ok=False)
    finally:
        sloppy.unlink()
    assert failed.returncode != 0
    assert "sloppy.py" in failed.stdout and "F401" in failed.stdout
    run(["make", "lint"], root, project_env)


def test_pre_commit_hooks_pass_and_block_a_bad_commit(default_project, project_env):
    root = default_project
    hooks = run(["uv", "run", "--frozen", "pre-commit", "run", "--all-files"], root, project_env)
    assert "Failed" not in hooks.stdout and "Passed" in hooks.stdout
    bad = root / "src/my_ml_project/bad.py"
    bad.write_text("import os\n")
    run(["git", "add", str(bad)], root, project_env)
    try:
        blocked = run(["git", "commit", "-m", "bad code"], root, project_env, ok=False)
    finally:
        run(["git", "rm", "--cached", "--quiet", "-f", str(bad)], root, project_env)
        bad.unlink()
    assert blocked.returncode != 0
    hook_output = blocked.stdout + blocked.stderr
    assert "ruff check" in hook_output and "Failed" in hook_output and "hook id: ruff-check" in hook_output
    assert run(["git", "rev-list", "--count", "HEAD"], root, project_env).stdout.strip() == "1"
    assert run(["git", "status", "--porcelain"], root, project_env).stdout == ""


def test_the_generated_tests_gate_fails_on_a_failing_test(default_project, project_env):
    """`make test` fails when one of the project's tests fails. (That the generated tests of a default
    project pass is shown by test_update.py and test_make_update.py, whose projects end as this one,
    with their users' edits.)"""
    root = default_project
    probe = root / "tests/test_probe_gate.py"
    probe.write_text("def test_probe_gate():\n    assert 1 + 1 == 3\n")
    try:
        failed = run(["make", "test"], root, {**project_env, "PYTEST_ADDOPTS": "-k probe_gate"}, ok=False)
    finally:
        probe.unlink()
    assert failed.returncode != 0
    assert "1 failed" in failed.stdout and "test_probe_gate" in failed.stdout


def test_pipeline_writes_metrics_plots_and_gate_results(default_project, default_repro, project_env):
    root = default_project
    for stage in STAGES:
        assert f"Running stage '{stage}'" in default_repro.stdout
    # MLflow's INFO lines only when asked for (MLFLOW_LOGGING_LEVEL=INFO)
    assert " INFO mlflow" not in default_repro.stdout + default_repro.stderr
    validation = read_json(root / "reports/validation.json")
    assert validation["success"] is True and validation["failed"] == 0 and validation["evaluated"] > 60
    metrics = read_json(root / "reports/metrics.json")
    baseline = metrics.pop("baseline")
    assert (
        set(metrics)
        == set(baseline)
        == {
            "accuracy",
            "balanced_accuracy",
            "f1_macro",
            "f1",
            "precision",
            "recall",
            "roc_auc",
        }
    )
    assert all(0.9 <= value <= 1.0 for value in metrics.values()), metrics
    assert baseline["roc_auc"] == 0.5 and baseline["f1"] > 0.7  # the majority class is 1 (benign)
    gate = read_json(root / "reports/gate.json")
    assert gate["passed"] is True and gate["positive_class"] == "1"
    gated = {"accuracy", "f1", "roc_auc", "roc_auc vs baseline"}
    evidence = {"test rows", "test rows of the rarest class ('0')"}
    assert {c["metric"] for c in gate["checks"]} == gated | evidence
    intervals = gate["evidence"]["intervals"]  # each gated metric's, its low end over the bound
    assert set(intervals) == gated and all(
        c["interval"][0] >= c["min"] for c in gate["checks"] if c["metric"] in gated - {"roc_auc vs baseline"}
    )
    assert gate["model_sha256"] and gate["evidence"]["confidence"] == 0.95
    confusion = (root / "reports/plots/confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted"
    test_rows = len(table_rows(root, project_env))
    assert len(confusion) - 1 == test_rows > 100
    roc = (root / "reports/plots/roc.csv").read_text().splitlines()
    assert roc[0] == "fpr,tpr" and roc[1] == "0.0,0.0" and roc[-1] == "1.0,1.0"
    assert (root / "models/model.joblib").stat().st_size > 0


def test_passing_model_is_registered_as_challenger_with_lineage(default_project, default_repro, project_env):
    root = default_project
    state = registry(root)
    assert state["models"] == ["my-ml-project"]
    assert state["versions"] == [("my-ml-project", 1)]
    assert state["aliases"] == {("my-ml-project", "challenger"): 1}
    assert state["gates"] == {1: "passed"}
    (run_id,) = runs(root)
    tags = run_tags(root, run_id)
    first_commit = run(["git", "rev-list", "--max-parents=0", "HEAD"], root, project_env).stdout.strip()
    assert tags["git_commit"] == first_commit
    assert len(tags["dvc_lock_sha256"]) == 64
    assert tags["train_data_sha256"] == sha256(root / "data/prepared/train.parquet")
    assert tags["quality_gate"] == "passed"

    # The registered model loads from the registry by alias and predicts.
    script = (
        "import mlflow, pyarrow.parquet as pq\n"
        "mlflow.set_tracking_uri('sqlite:///mlflow.db')\n"
        "model = mlflow.pyfunc.load_model('models:/my-ml-project@challenger')\n"
        "test = pq.read_table('data/prepared/test.parquet', use_threads=False).to_pandas(use_threads=False)\n"
        "print(sorted(set(model.predict(test.drop(columns=['target'])).tolist())))\n"
    )
    loaded = run(["uv", "run", "--frozen", "python", "-c", script], root, project_env)
    assert loaded.stdout.strip().splitlines()[-1] == "[0, 1]"


def test_make_ui_opens_the_embedded_store_in_seconds(default_project, default_repro, project_env):
    from .test_serving import Service, http

    started = time.monotonic()
    ui = Service(default_project, project_env, command=["make", "ui", "UI_PORT={port}"])
    try:
        ui.wait(timeout=90)
        elapsed = time.monotonic() - started
        status, body = http(ui.url + "/ajax-api/2.0/mlflow/registered-models/search")
        assert status == 200 and b"my-ml-project" in body, body[:300]
    finally:
        ui.stop()
    print(f"make ui answered after {elapsed:.1f} s")
    assert elapsed < 60


def test_second_repro_is_a_no_op(default_project, default_repro, project_env):
    root = default_project
    lock = (root / "dvc.lock").read_text()
    before = registry(root), runs(root)
    again = dvc(root, project_env, "repro")
    assert UP_TO_DATE in again.stdout
    assert "Running stage" not in again.stdout
    for stage in STAGES:
        assert f"Stage '{stage}' didn't change, skipping" in again.stdout
    assert (root / "dvc.lock").read_text() == lock
    assert (registry(root), runs(root)) == before
    assert_clean(root, project_env)


def test_promote_moves_champion_to_the_challenger(default_project, default_repro, project_env):
    root = default_project
    promoted = run(["make", "promote"], root, project_env)
    assert "my-ml-project v1 is now champion" in promoted.stdout
    assert registry(root)["aliases"] == {
        ("my-ml-project", "challenger"): 1,
        ("my-ml-project", "champion"): 1,
    }
    again = run(["make", "promote"], root, project_env)
    assert "already champion" in again.stdout


def test_dvc_remote_shares_data_and_model_with_a_clone(
    default_project, default_repro, project_env, shared_venv
):
    root = default_project
    storage = root.parent / "my-ml-project-dvc-storage"  # ../my-ml-project-dvc-storage, the default remote
    assert not storage.exists()
    dvc(root, project_env, "push")
    assert len([p for p in storage.rglob("*") if p.is_file()]) >= 4  # raw, train, test, model

    clone = root.parent / "teammate"
    run(["git", "clone", "--quiet", str(root), str(clone)], root.parent, project_env)
    assert not (clone / "models/model.joblib").exists()
    # What CI runs (make pull), in the shared environment without syncing it to the clone, so the
    # clone does not replace the project's editable install.
    run(["make", "pull", "RUN=uv run --frozen --no-sync"], clone, project_env)
    for output in ("models/model.joblib", "data/raw/dataset.parquet", "data/prepared/train.parquet"):
        assert sha256(clone / output) == sha256(root / output), output
    assert UP_TO_DATE in run([str(shared_venv / "bin/dvc"), "status"], clone, project_env).stdout


def test_a_feature_written_in_prepare_py_runs_through_repro_and_score(tmp_path, project_env):
    """The user's own code: ``derive`` in data/prepare.py adds a column; `make repro` gives it a role
    and trains on it (the model's pipeline computes it), `make score` computes it from raw rows. A
    column written after the first run stops `make repro` at profile, naming it, until it has a role
    in data/columns.yaml; DVC then reruns what depends on prepare.py."""
    root = render(tmp_path / "my-ml-project")
    make_setup(root, project_env)
    module = root / "src/my_ml_project/data/prepare.py"
    identity = "    return frame\n\n\ndef features_of"
    assert identity in module.read_text()

    def derive(body: str) -> None:
        module.write_text(module.read_text().replace(identity, f"    return {body}\n\n\ndef features_of"))

    derive('frame.assign(row_total=frame.select_dtypes("number").sum(axis=1))')
    identity = (
        '    return frame.assign(row_total=frame.select_dtypes("number").sum(axis=1))\n\n\ndef features_of'
    )
    run(["make", "repro"], root, project_env)
    roles = (root / "data/columns.yaml").read_text()
    assert re.search(r"^  row_total: feature .*added by derive in data/prepare.py", roles, re.MULTILINE), (
        roles
    )
    run(["make", "score", "INPUT=data/prepared/test.parquet", "OUTPUT=scored.csv"], root, project_env)
    scored = (root / "scored.csv").read_text().splitlines()
    assert "prediction" in scored[0] and "row_total" not in scored[0] and len(scored) > 20
    derive(
        'frame.assign(row_total=frame.select_dtypes("number").sum(axis=1), n_missing=frame.isna().sum(axis=1))'
    )
    stopped = run(["make", "repro"], root, project_env, ok=False)
    assert stopped.returncode != 0 and "add 'n_missing' with a role" in stopped.stdout + stopped.stderr
    with (root / "data/columns.yaml").open("a") as roles_file:
        roles_file.write("  n_missing: constant\n")
    again = run(["make", "repro"], root, project_env)
    assert "Running stage 'train'" in again.stdout


def test_shipped_classification_suite_is_what_the_profiler_writes(
    default_project, default_repro, project_env
):
    root = default_project
    suite = root / "data/expectations/raw.json"
    shipped = suite.read_text()
    done = run(["make", "suite"], root, project_env)
    assert "wrote 63 expectations" in done.stdout
    assert suite.read_text() == shipped
    assert_clean(root, project_env)


def test_shipped_regression_suite_is_what_the_profiler_writes(tmp_path, project_env):
    root = render(tmp_path / "diabetes-sample", project_name="Diabetes Sample", ml_task="regression")
    shipped = (root / "data/expectations/raw.json").read_text()
    run(["uv", "sync", "--quiet"], root, project_env)
    for command in ("collect", "profile"):  # the roles file is profiled; the shipped suite is kept
        run(["uv", "run", "--frozen", "python", "-m", "diabetes_sample", command], root, project_env)
    assert (root / "data/expectations/raw.json").read_text() == shipped
    run(["make", "suite"], root, project_env)
    assert (root / "data/expectations/raw.json").read_text() == shipped


def corrupt(
    csv_file: Path, column: str, bad: str, nulls: str, extra: str | None = None, rows: int = 5
) -> None:
    """Put ``bad`` in ``column`` and blanks in ``nulls`` for a few rows; optionally add a column."""
    lines = csv_file.read_text().splitlines()
    header = lines[0].split(",")
    out = [lines[0] + (f",{extra}" if extra else "")]
    for number, line in enumerate(lines[1:]):
        cells = line.split(",")
        if number < rows:
            cells[header.index(column)] = bad
        elif number < 2 * rows:
            cells[header.index(nulls)] = ""
        out.append(",".join(cells) + (",1" if extra else ""))
    csv_file.write_text("\n".join(out) + "\n")


CORRUPT = """
import sys
import pyarrow.parquet as pq
table, column, bad, nulls, extra, rows = sys.argv[1:7]
frame = pq.read_table(table, use_threads=False).to_pandas(use_threads=False)
frame.loc[frame.index[: int(rows)], column] = float(bad)
frame.loc[frame.index[int(rows) : 2 * int(rows)], nulls] = None
frame[extra] = 1
frame.to_parquet(table, index=False)
"""


def test_corrupted_raw_data_stops_the_pipeline_at_validation(default_project, default_repro, project_env):
    root = default_project
    before = registry(root), runs(root)
    # corrupt()'s change, in the collected table (Parquet): bad values, blank targets, a new column
    corruption = ["data/raw/dataset.parquet", "mean_radius", "-5.5", "target", "surprise", "5"]
    run(["uv", "run", "--frozen", "python", "-c", CORRUPT, *corruption], root, project_env)
    # Re-run the pipeline from the replaced raw file (a plain `dvc repro` would first restore the
    # collect stage's tracked output from the run cache).
    failed = dvc(root, project_env, "repro", "--downstream", "validate", ok=False)
    assert failed.returncode != 0
    assert "Running stage 'validate'" in failed.stdout
    assert "Running stage 'prepare'" not in failed.stdout
    report = failed.stderr
    assert "validate FAILED: 2 of 63 expectations failed" in report
    assert "expect_column_values_to_be_between on column 'mean_radius'" in report
    assert "5 unexpected values, e.g. [-5.5, -5.5, -5.5, -5.5, -5.5]" in report
    assert "expect_table_columns_to_match_set" in report and "'surprise'" in report
    assert "run `make suite` to profile the contract again" in report  # how to accept a real change
    summary = read_json(root / "reports/validation.json")
    assert summary["success"] is False
    # Rows without a target are unlabelled, not broken: no failure for them.
    assert {(f["expectation"], f["column"]) for f in summary["failures"]} == {
        ("expect_column_values_to_be_between", "mean_radius"),
        ("expect_table_columns_to_match_set", None),
    }
    assert (registry(root), runs(root)) == before, "nothing may be trained, logged or registered"

    dvc(root, project_env, "checkout", "--force", "data/raw/dataset.parquet")
    run(["git", "checkout", "--", "reports"], root, project_env)
    assert_clean(root, project_env)


def test_unreachable_thresholds_fail_the_quality_gate_and_register_nothing(
    default_project, default_repro, project_env
):
    root = default_project
    before, runs_before = registry(root), runs(root)
    kpis_file = root / "business/kpis.yaml"
    kpis = yaml.safe_load(kpis_file.read_text())
    kpis["thresholds"]["roc_auc"] = {"min": 1.01}
    kpis_file.write_text(yaml.safe_dump(kpis))
    failed = dvc(root, project_env, "repro", ok=False)
    assert failed.returncode != 0
    assert "Running stage 'evaluate'" in failed.stdout and "Running stage 'train'" not in failed.stdout
    assert "evaluate FAILED: the model falls short of the business thresholds" in failed.stderr
    assert "roc_auc = " in failed.stderr and "business/kpis.yaml requires >= 1.01" in failed.stderr
    assert "nothing was registered" in failed.stderr
    gate = read_json(root / "reports/gate.json")
    assert gate["passed"] is False
    assert [c["metric"] for c in gate["checks"] if not c["passed"]] == ["roc_auc"]
    assert registry(root) == before, "no new version, aliases unchanged"
    new_runs = {k: v for k, v in runs(root).items() if k not in runs_before}
    assert list(new_runs.values()) == ["failed"], "the run is logged and tagged as failing the gate"

    run(["git", "checkout", "--", "business", "reports"], root, project_env)
    assert_clean(root, project_env)


# --------------------------------------------------------------- regression from a CSV over HTTP
@pytest.fixture(scope="module")
def csv_server(tmp_path_factory):
    """A real HTTP server on 127.0.0.1 serving a folder."""
    folder = tmp_path_factory.mktemp("served")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def csv_project(tmp_path_factory, project_env, csv_server, shared_venv) -> Path:
    folder, url = csv_server
    root = render(
        tmp_path_factory.mktemp("csv") / "diabetes-progression",
        project_name="Diabetes Progression",
        ml_task="regression",
        data_source="csv",
        csv_location=f"{url}/diabetes.csv",
        target_column="progression",
        license="Apache-2.0",
    )
    make_setup(root, project_env)
    # scikit-learn's diabetes data in original units, target column named "progression".
    script = (
        "import sys\nfrom sklearn.datasets import load_diabetes\n"
        "frame = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={'target': 'progression'})\n"
        "frame.to_csv(sys.argv[1], index=False)\n"
    )
    run([str(shared_venv / "bin/python"), "-c", script, str(folder / "diabetes.csv")], root, project_env)
    commit_all(root, project_env, "Generated from the template")
    return root


def test_regression_project_from_a_csv_url(csv_project, project_env):
    root = csv_project
    # The project's own tests on a user's regression CSV run in test_csv_shapes (the regression shape).
    run(["make", "lint"], root, project_env)
    done = run(["make", "repro"], root, project_env)
    assert "collected 442 rows x 11 columns" in done.stdout
    assert read_json(root / "reports/validation.json")["success"] is True
    metrics = read_json(root / "reports/metrics.json")
    assert set(metrics) == {"r2", "rmse", "mae", "baseline"}
    assert metrics["r2"] >= 0.35 and 0 < metrics["mae"] <= metrics["rmse"], metrics
    assert metrics["baseline"]["r2"] <= 0.0  # the mean of the training target
    assert read_json(root / "reports/gate.json")["passed"] is True
    residuals = (root / "reports/plots/residuals.csv").read_text().splitlines()
    assert residuals[0] == "actual,predicted,residual"
    assert len(residuals) - 1 == len(table_rows(root, project_env))
    state = registry(root)
    assert state["versions"] == [("diabetes-progression", 1)]
    assert state["aliases"] == {("diabetes-progression", "challenger"): 1}
    commit_all(root, project_env, "Run the pipeline")

    lock = (root / "dvc.lock").read_text()
    again = dvc(root, project_env, "repro")
    assert UP_TO_DATE in again.stdout and "Running stage" not in again.stdout
    assert (root / "dvc.lock").read_text() == lock

    assert "is now champion" in run(["make", "promote"], root, project_env).stdout
    assert registry(root)["aliases"][("diabetes-progression", "champion")] == 1


def test_first_run_profiles_the_csv_contract_and_make_suite_reproduces_it(csv_project, project_env):
    root = csv_project
    suite_file = root / "data/expectations/raw.json"
    profiled = read_json(suite_file)["expectations"]
    ranges = {
        e["kwargs"]["column"]: (e["kwargs"]["min_value"], e["kwargs"]["max_value"])
        for e in profiled
        if e["type"] == "expect_column_values_to_be_between"
    }
    assert set(ranges) == {"age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "progression"}
    assert ranges["bmi"][0] < 18.0 < 42.2 < ranges["bmi"][1]  # observed 18.0-42.2, widened
    roles = yaml.safe_load((root / "data/columns.yaml").read_text())["columns"]
    assert set(roles.values()) == {"feature"} and "progression" not in roles
    run(["make", "suite"], root, project_env)
    assert read_json(suite_file)["expectations"] == profiled
    assert UP_TO_DATE in dvc(root, project_env, "repro").stdout
    assert_clean(root, project_env)


def test_retrain_collects_fresh_data_and_registers_a_new_challenger(csv_project, csv_server, project_env):
    """What the retrain workflow runs: fresh rows at the source -> new data, new model, new version."""
    root = csv_project
    folder, _ = csv_server
    served = folder / "diabetes.csv"
    original = served.read_text()
    lines = original.splitlines()
    versions_before = registry(root)["versions"]
    lock_before = (root / "dvc.lock").read_text()
    # 60 new rows, inside the contract's ranges (prepare drops exact duplicates, so not copies).
    fresh = [line.rsplit(",", 1) for line in lines[1:61]]
    fresh = [f"{row},{float(progression) + 1}" for row, progression in fresh]
    served.write_text("\n".join(lines + fresh) + "\n")
    try:
        done = run(["make", "retrain"], root, project_env)
    finally:
        served.write_text(original)
    assert "collected 502 rows x 11 columns" in done.stdout
    assert "Running stage 'train'" in done.stdout
    assert (root / "dvc.lock").read_text() != lock_before
    assert read_json(root / "reports/gate.json")["passed"] is True
    state = registry(root)
    newest = len(versions_before) + 1
    assert state["versions"] == [*versions_before, ("diabetes-progression", newest)]
    assert state["aliases"][("diabetes-progression", "challenger")] == newest
    commit_all(root, project_env, "Retrained on fresh data")  # the retrain workflow's pull request
    assert_clean(root, project_env)


def test_bad_data_at_the_source_fails_validation_and_registers_nothing(csv_project, csv_server, project_env):
    root = csv_project
    folder, _ = csv_server
    served = folder / "diabetes.csv"
    original = served.read_text()
    before = registry(root), runs(root)
    corrupt(served, "bmi", "-99.5", nulls="progression")
    try:
        # New data at the URL: the retraining the monitor starts collects it afresh.
        failed = run(["make", "retrain"], root, project_env, ok=False)
    finally:
        served.write_text(original)
    assert failed.returncode != 0
    assert "Running stage 'collect'" in failed.stdout and "Running stage 'prepare'" not in failed.stdout
    assert "expect_column_values_to_be_between on column 'bmi'" in failed.stderr
    assert "e.g. [-99.5, -99.5, -99.5, -99.5, -99.5]" in failed.stderr
    assert "make suite" in failed.stderr  # how to accept a legitimate change
    summary = read_json(root / "reports/validation.json")
    assert summary["success"] is False
    # Rows without a target are unlabelled, not bad data: preparation leaves them out.
    assert {f["column"] for f in summary["failures"]} == {"bmi"}
    assert (registry(root), runs(root)) == before


# --------------------------------------------------------------------------- trust and update
def test_trusted_copy_runs_only_the_declared_tasks(tmp_path, project_env, monkeypatch):
    """With `_tasks` (hooks), a trusted copy runs them: a git repo with one commit and uv.lock.
    Without (the current design: `make setup` does that work), trust changes nothing at all."""
    config = yaml.safe_load((REPO_ROOT / "copier.yml").read_text())
    for key, value in project_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    trusted = render(tmp_path / "trusted" / "my-ml-project", unsafe=True, src=REPO_ROOT, vcs_ref="HEAD")
    if config.get("_tasks"):
        assert run(["git", "rev-list", "--count", "HEAD"], trusted, project_env).stdout.strip() == "1"
        assert run(["git", "status", "--porcelain"], trusted, project_env).stdout == ""
        assert (trusted / "uv.lock").is_file()
    else:
        untrusted = render(tmp_path / "untrusted" / "my-ml-project", src=REPO_ROOT, vcs_ref="HEAD")
        assert not (trusted / ".git").exists() and not (trusted / "uv.lock").exists()
        assert files_of(trusted) == files_of(untrusted)

        # `_commit` of a dirty template working tree is stamped per copy (the README names it); the
        # answers are the same.
        def stamped(root: Path, name: str) -> bytes:
            commit = str(yaml.safe_load((root / ".copier-answers.yml").read_text())["_commit"])
            return (root / name).read_bytes().replace(commit.encode(), b"<commit>")

        for name in files_of(trusted) - {".copier-answers.yml"}:
            assert stamped(trusted, name) == stamped(untrusted, name), name
        answers = [
            {
                k: v
                for k, v in yaml.safe_load((p / ".copier-answers.yml").read_text()).items()
                if k != "_commit"
            }
            for p in (trusted, untrusted)
        ]
        assert answers[0] == answers[1]

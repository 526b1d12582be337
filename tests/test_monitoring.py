"""Deployment QA, responsible AI and monitoring on a real generated project.

One project with a sensitive feature, set up and run as a user would. The real service runs in a
subprocess on 127.0.0.1 and `make qa` checks it (online and malformed requests, the load test against
business/kpis.yaml, the responsible-AI check, batch scoring); `make fairness` passes with the default
limits and fails tightened ones; `make drift` stays quiet on production inputs like the held-out data
and writes retrain=true for shifted ones. Every gate is shown failing as well as passing.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .conftest import UV, built_project, run, table_rows

pytestmark = pytest.mark.slow

PACKAGE = "my_ml_project"
SENSITIVE = (
    "fractal_dimension_error"  # a column of the breast-cancer sample without a strong link to the label
)


@pytest.fixture(scope="module")
def project(tmp_path_factory, project_env) -> Path:
    return built_project(
        tmp_path_factory.mktemp("monitoring") / "my-ml-project", project_env, sensitive_feature=SENSITIVE
    )


@contextlib.contextmanager
def edited(file: Path, old: str, new: str):
    """``file`` with ``old`` replaced by ``new`` for the duration of the block."""
    original = file.read_text()
    assert old in original, f"{old!r} not in {file}"
    file.write_text(original.replace(old, new))
    try:
        yield
    finally:
        file.write_text(original)


def read_json(path: Path):
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------------- fairness
def test_fairness_passes_with_the_defaults_and_fails_a_tighter_limit(project, project_env, tmp_path):
    done = run(["make", "fairness"], project, project_env)
    assert f"metrics per group of `{SENSITIVE}`" in done.stdout and "quartile bins" in done.stdout
    assert "Verdict: pass" in done.stdout
    result = read_json(project / "reports/fairness.json")
    assert result["passed"] and len(result["groups"]) == 4
    assert set(result["difference"]) >= {"accuracy", "selection_rate"}
    observed = result["difference"]["selection_rate"]
    assert 0 < observed <= 0.25

    kpis = project / "business/kpis.yaml"
    with edited(kpis, "selection_rate: 0.25", f"selection_rate: {observed / 2:.4f}"):
        failed = run(["make", "fairness"], project, project_env, ok=False)
    assert failed.returncode != 0
    assert "fairness FAILED" in failed.stderr and "selection_rate between groups" in failed.stderr
    assert read_json(project / "reports/fairness.json")["passed"] is False


# ------------------------------------------------------------------------------------------------ QA
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def service(project, project_env):
    """The real service (`python -m <package> serve`) on a free port, until the module ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (project / "serve.log").open("w")
    process = subprocess.Popen(
        [UV, "run", "--frozen", "python", "-m", PACKAGE, "serve", "--port", str(port)],
        cwd=project,
        env=project_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        for _ in range(120):
            if process.poll() is not None:
                raise AssertionError(f"the service exited: {(project / 'serve.log').read_text()[-3000:]}")
            with contextlib.suppress(OSError), no_proxy.open(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
            time.sleep(0.5)
        else:
            raise AssertionError(f"no /health after 60 s: {(project / 'serve.log').read_text()[-3000:]}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_qa_passes_against_the_real_service(project, project_env, service, tmp_path):
    summary = tmp_path / "summary.md"
    done = run(
        ["make", "qa", f"URL={service}"], project, {**project_env, "GITHUB_STEP_SUMMARY": str(summary)}
    )
    report = read_json(project / "reports/qa.json")
    assert report["passed"], report
    checks = {c["check"]: c for c in report["checks"]}
    assert {"health", "load test", "responsible AI", "batch scoring"} <= set(checks)
    assert sum(name.startswith("malformed: ") for name in checks) == 6
    load = report["loadtest"]
    assert load["requests"] == 400 and load["errors"] == 0 and load["requests_per_s"] > 0
    assert 0 < load["latency_ms"]["p50"] <= load["latency_ms"]["p99"] <= 100
    assert "QA passed" in done.stdout
    table = summary.read_text()
    assert "| load test |" in table and "**FAIL**" not in table
    assert f"metrics per group of `{SENSITIVE}`" in table


def test_qa_fails_when_p99_latency_is_above_the_limit(project, project_env, service):
    with edited(project / "business/kpis.yaml", "p99_latency_ms: {max: 100}", "p99_latency_ms: {max: 0.001}"):
        failed = run(["make", "qa", f"URL={service}"], project, project_env, ok=False)
    assert failed.returncode != 0
    assert "qa FAILED" in failed.stderr and "load test" in failed.stderr
    report = read_json(project / "reports/qa.json")
    assert not report["passed"]
    assert [c["check"] for c in report["checks"] if not c["passed"]] == ["load test"]
    assert [c["metric"] for c in report["loadtest"]["checks"] if not c["passed"]] == ["p99_latency_ms"]


def test_qa_fails_when_the_service_is_down(project, project_env):
    failed = run(["make", "qa", f"URL=http://127.0.0.1:{free_port()}"], project, project_env, ok=False)
    assert failed.returncode != 0 and "service reachable" in failed.stderr


def test_the_services_prediction_log_feeds_the_drift_monitor_without_qa_traffic(
    project, project_env, service
):
    """What QA sent is in the service's prediction log, marked as QA traffic, and `make drift` leaves
    it out; production requests (no marker) are what it reads."""
    logs = sorted((project / "logs/predictions").glob("*.jsonl"))
    assert logs, "the service wrote no prediction log"
    first = json.loads(logs[0].read_text().splitlines()[0])
    assert {"ts", "inputs", "prediction"} <= set(first) and first["traffic"] == "qa"
    only_qa = run(["make", "drift"], project, project_env, ok=False)
    assert only_qa.returncode != 0 and "no production data" in only_qa.stderr
    assert "rows of QA and load-test traffic" in only_qa.stdout
    rows = [
        {k: float(v) for k, v in row.items() if k != "target"} for row in table_rows(project, project_env)
    ]
    request = urllib.request.Request(
        f"{service}/predict",
        data=json.dumps({"instances": rows[:60]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
    run(["make", "drift"], project, project_env)
    verdict = read_json(project / "reports/drift.json")
    assert verdict["rows"]["current"] == 60 and verdict["missing_columns"] == []


# --------------------------------------------------------------------------------------------- drift
def write_log(project: Path, rows: list[dict], scale: float) -> None:
    """A prediction log (as the service writes it) of the held-out ``rows``, features times ``scale``."""
    logs = project / "logs/predictions"
    for old in logs.glob("*.jsonl"):
        old.unlink()
    logs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC)
    lines = []
    for row in rows:
        inputs = {k: float(v) * scale for k, v in row.items() if k != "target"}
        lines.append(json.dumps({"ts": stamp.isoformat(), "inputs": inputs, "prediction": 1}))
    (logs / f"{stamp.date().isoformat()}.jsonl").write_text("\n".join(lines) + "\n")


def test_drift_requests_retraining_only_for_shifted_inputs(project, project_env, tmp_path):
    output = tmp_path / "github_output"
    env = {**project_env, "GITHUB_OUTPUT": str(output)}

    write_log(project, table_rows(project, project_env), scale=1.0)
    quiet = run(["make", "drift"], project, env)
    assert "no retraining needed" in quiet.stdout
    assert output.read_text().splitlines()[0] == "retrain=false"
    verdict = read_json(project / "reports/drift.json")
    assert verdict["retrain"] is False and verdict["rows"]["current"] == 113

    output.unlink()
    (project / "reports/drift.html").unlink()
    write_log(project, table_rows(project, project_env), scale=3.0)
    loud = run(["make", "drift"], project, env)  # exit 0: the workflow branches on the output
    assert "RETRAIN" in loud.stdout
    assert output.read_text().splitlines()[0] == "retrain=true"
    verdict = read_json(project / "reports/drift.json")
    assert verdict["retrain"] is True and verdict["drift_share"] > verdict["threshold"] == 0.3
    assert (project / "reports/drift.html").stat().st_size > 100_000  # Evidently's HTML report
    failed = run(
        [UV, "run", "--frozen", "python", "-m", PACKAGE, "drift", "--fail-on-drift"], project, env, ok=False
    )
    assert failed.returncode == 1 and "retrain the model" in failed.stderr


def test_drift_without_production_data_fails_clearly(project, project_env):
    for old in (project / "logs/predictions").glob("*.jsonl"):
        old.unlink()
    failed = run(["make", "drift"], project, project_env, ok=False)
    assert failed.returncode != 0 and "no production data" in failed.stderr

"""Shared tracking: a real `mlflow server` on 127.0.0.1 (sqlite backend, artifacts in a folder), as a
team runs it. A generated project pointed at it by ``MLFLOW_TRACKING_URI`` runs the pipeline,
promotes, packages and serves the champion by alias, and writes nothing to a local store. A server
that is down is reported within seconds, by name.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest

from .conftest import built_project, free_port, http, make_setup, render, run, wait_healthy
from .test_serving import Service

pytestmark = pytest.mark.slow
MODEL = "my-ml-project"


@pytest.fixture(scope="module")
def server(tmp_path_factory, project_env, shared_venv):
    """`mlflow server --workers 1` from the projects' shared environment; yields its folder and URL.
    A generated project is set up first: it is what installs MLflow into that environment."""
    scratch = tmp_path_factory.mktemp("bootstrap")
    make_setup(render(scratch / "bootstrap"), project_env)
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [
            str(shared_venv / "bin/mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'server.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=project_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url + "/health", 180, process.poll, lambda: (folder / "server.log").read_text()[-3000:])
    except AssertionError:
        process.kill()
        raise
    yield folder, url
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def server_registry(folder: Path) -> dict:
    with closing(sqlite3.connect(folder / "server.db")) as db:
        versions = db.execute("SELECT version FROM model_versions WHERE name = ?", (MODEL,)).fetchall()
        aliases = dict(db.execute("SELECT alias, version FROM registered_model_aliases").fetchall())
    return {"versions": [v for (v,) in versions], "aliases": aliases}


@pytest.fixture(scope="module")
def team_project(server, tmp_path_factory, project_env) -> Path:
    _, url = server
    env = {**project_env, "MLFLOW_TRACKING_URI": url}
    return built_project(tmp_path_factory.mktemp("team") / "my-ml-project", env)


def test_pipeline_promote_package_and_serve_by_alias_on_the_server(server, team_project, project_env):
    folder, url = server
    env = {**project_env, "MLFLOW_TRACKING_URI": url}
    assert server_registry(folder) == {"versions": [1], "aliases": {"challenger": 1}}
    run(["make", "promote"], team_project, env)
    assert server_registry(folder)["aliases"] == {"challenger": 1, "champion": 1}
    assert any((folder / "artifacts").rglob("MLmodel")), "the model's artifacts are on the server"
    packaged = run(["make", "package", f"MODEL_URI=models:/{MODEL}@champion"], team_project, env)
    assert "champion" in packaged.stdout
    service = Service(team_project, env, MODEL_URI=f"models:/{MODEL}@champion").wait()
    try:
        status, body = http(service.url + "/health")
        assert status == 200 and b"@champion" in body
    finally:
        service.stop()
    for local in ("mlflow.db", "mlruns", "mlartifacts"):
        assert not (team_project / local).exists(), f"{local} written although a server was configured"


def test_a_tracking_server_that_is_down_is_named_within_seconds(team_project, project_env):
    down = f"http://127.0.0.1:{free_port()}"
    env = {**project_env, "MLFLOW_TRACKING_URI": down}
    started = time.monotonic()
    failed = run(["make", "promote"], team_project, env, ok=False)
    elapsed = time.monotonic() - started
    assert failed.returncode != 0
    assert f"the MLflow tracking server at {down} does not answer" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert elapsed < 30, f"{elapsed:.0f} s to report a server that is down"

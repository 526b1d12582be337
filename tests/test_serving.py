"""Deployment of generated projects for real: the service runs as `python -m <pkg> serve` (uvicorn on
127.0.0.1) after `make repro`, from the model file and from the MLflow registry; `make score` and
`make package`; the Dockerfile (no docker daemon here: parsed, and its RUN, COPY and ENV lines
replayed on the host to serve from the packaged model); and a regression project's own serving tests."""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
import time
from pathlib import Path

import pytest

from .conftest import RunningService, http, render, run, table_rows

PKG = "my_ml_project"
MODEL_NAME = "my-ml-project"


# ----------------------------------------------------------------------------- fast: the image recipe
@pytest.mark.parametrize("version", ["3.11", "3.12"])
def test_dockerfile_is_slim_non_root_and_serves_the_packaged_model(tmp_path, version):
    root = render(tmp_path / "p", python_version=version)
    text = (root / "Dockerfile").read_text()
    lines = [line.strip() for line in re.sub(r"\\\n", " ", text).splitlines() if line.strip()]
    instructions = [line for line in lines if not line.startswith("#")]
    args = dict(line[4:].split("=", 1) for line in instructions if line.startswith("ARG "))
    assert args["PYTHON_IMAGE"] == f"python:{version}-slim"  # --build-arg hands in a local one
    froms = [line.split()[1] for line in instructions if line.startswith("FROM ")]
    assert froms == ["${UV_IMAGE}", "${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    final = instructions[max(i for i, line in enumerate(instructions) if line.startswith("FROM ")) :]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the service must not run as root"
    cmd = next(line for line in final if line.startswith("CMD "))
    assert final.index(cmd) > final.index(f"USER {users[-1]}")
    assert json.loads(cmd[4:]) == ["python", "-m", PKG, "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert any(line.startswith("HEALTHCHECK ") and "/health" in line for line in final)
    assert "COPY build/model/ model/" in final and any("MODEL_DIR=/app/model" in line for line in final)
    export = next(line for line in instructions if "uv export" in line)
    assert "--only-group serve" in export and "--no-default-groups" in export and "--frozen" in export
    assert "mlflow" not in text.lower().replace("no mlflow", "")
    # Everything the image copies passes .dockerignore; the project's data and stores do not.
    ignore = [line for line in (root / ".dockerignore").read_text().split("\n") if line and line[0] != "#"]
    assert ignore[0] == "*"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert allowed == {"pyproject.toml", "uv.lock", "params.yaml", "src", "build/model"}


# ------------------------------------------------------------------------------ the real service
@pytest.fixture(scope="module")
def project(default_built) -> Path:
    return default_built


class Service(RunningService):
    def predict(self, payload) -> tuple[int, dict]:
        status, body = http(self.url + "/predict", json.dumps(payload).encode())
        return status, json.loads(body)


@pytest.fixture(scope="module")
def service(project, project_env):
    service = Service(project, project_env).wait()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def held(project, project_env) -> list[dict]:
    """The held-out rows as a client sends them (the target left out)."""
    return [
        {k: float(v) for k, v in row.items() if k != "target"} for row in table_rows(project, project_env)
    ]


def joblib_predictions(root: Path, env: dict, table: str = "data/prepared/test.parquet") -> dict:
    """The model file's own predictions and probabilities for the held-out rows."""
    script = (
        "import json, joblib, pyarrow.parquet as pq\n"
        "model = joblib.load('models/model.joblib')\n"
        f"rows = pq.read_table({table!r}, use_threads=False).to_pandas(use_threads=False).drop(columns=['target'])\n"
        "print(json.dumps({'predictions': model.predict(rows).tolist(),"
        " 'probabilities': model.predict_proba(rows).tolist()}))\n"
    )
    return json.loads(run(["uv", "run", "--frozen", "python", "-c", script], root, env).stdout)


@pytest.fixture(scope="module")
def expected(project, project_env):
    return joblib_predictions(project, project_env)


def test_good_requests_predict_what_the_model_file_predicts(held, project, service, expected):
    rows = held
    assert http(service.url + "/health") == (
        200,
        json.dumps({"status": "ok", "model": "models/model.joblib"}, separators=(",", ":")).encode(),
    )
    status, body = service.predict({"instances": rows})
    assert status == 200, body
    assert body["predictions"] == expected["predictions"]
    assert sum(body["probabilities"], []) == pytest.approx(sum(expected["probabilities"], []), rel=1e-9)
    for index in (0, 1, len(rows) - 1):  # one row per request, as clients send them
        status, body = service.predict({"instances": [rows[index]]})
        assert status == 200 and body["predictions"] == [expected["predictions"][index]]


MALFORMED = {
    "missing column": (
        lambda row: {"instances": [{k: v for k, v in row.items() if k != "mean_radius"}]},
        "mean_radius",
    ),
    "unknown column": (lambda row: {"instances": [{**row, "colour": 1}]}, "colour"),
    "text for a number": (lambda row: {"instances": [{**row, "mean_area": "large"}]}, "mean_area"),
    "a list for a number": (lambda row: {"instances": [{**row, "mean_area": [1]}]}, "mean_area"),
    "empty list": (lambda row: {"instances": []}, "empty"),
    "no instances": (lambda row: {"rows": [row]}, "instances"),
    "instances not a list": (lambda row: {"instances": row}, "instances"),
}


@pytest.mark.parametrize("case", [*MALFORMED, "not JSON", "NaN"])
def test_malformed_requests_get_4xx_with_a_message_never_500(held, project, service, case):
    row = held[0]
    if case == "not JSON":
        status, body = http(service.url + "/predict", b"{this is not json")
        message = "JSON"
    elif case == "NaN":
        status, body = http(
            service.url + "/predict", json.dumps({"instances": [{**row, "mean_area": float("nan")}]}).encode()
        )
        message = "mean_area"
    else:
        build, message = MALFORMED[case]
        status, body = http(service.url + "/predict", json.dumps(build(row)).encode())
    assert 400 <= status < 500, (status, body)
    assert message in json.loads(body)["detail"]


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, flags=re.M)
    assert match, f"{name} not in /metrics:\n{text}"
    return float(match.group(1))


def test_metrics_count_requests_errors_latency_and_predictions(held, service, project):
    before = http(service.url + "/metrics")[1].decode()
    row = held[0]
    assert service.predict({"instances": [row, row]})[0] == 200
    assert service.predict({"instances": []})[0] == 422
    status, body = http(service.url + "/metrics")
    text = body.decode()
    assert status == 200
    for name, grew in [
        ('predict_requests_total{status="200"}', 1),
        ('predict_requests_total{status="422"}', 1),
        ('predict_errors_total{kind="invalid_request"}', 1),
        ("predict_latency_seconds_count", 2),
        ("predicted_rows_total", 2),
    ]:
        old = metric(before, name) if name in before else 0.0
        assert metric(text, name) == old + grew, name
    assert metric(text, 'predict_requests_total{status="500"}') == 0
    labels = re.findall(r'^predictions_total\{label="(\w+)"\} ([0-9.]+)$', text, flags=re.M)
    assert labels and {label for label, _ in labels} <= {"0", "1"}
    assert sum(float(count) for _, count in labels) == metric(text, "predicted_rows_total")


def logged(project, at_least: int = 0, timeout: float = 10.0) -> tuple[Path | None, list[dict]]:
    """The prediction log's file and lines once it holds ``at_least`` lines (and 0.2 s on, so
    that nothing still queued is missed): the service's writer thread writes a request's lines
    within 50 ms of its answer (serving/log.py)."""
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(0.2)
        files = list((project / "logs/predictions").glob("*.jsonl"))
        lines = files[0].read_text().splitlines() if len(files) == 1 else []
        if len(lines) >= at_least or time.monotonic() > deadline:
            return (files[0] if files else None), [json.loads(line) for line in lines]


def test_prediction_log_has_every_served_row(held, service, project):
    rows = held[:4]
    _, earlier = logged(project)
    status, body = service.predict({"instances": rows})
    assert status == 200
    log, lines = logged(project, len(earlier) + 4)
    assert len(lines) == len(earlier) + 4
    assert set(lines[0]) == {"ts", "inputs", "prediction"}
    assert [line["inputs"] for line in lines[-4:]] == rows
    assert [line["prediction"] for line in lines[-4:]] == body["predictions"]
    assert log.name == lines[-1]["ts"][:10] + ".jsonl"
    status_lines = len(lines)
    service.predict({"instances": []})
    service.predict({"instances": rows[:1]})  # written after the refused one, if that were logged
    _, after = logged(project, status_lines + 1)
    assert len(after) == status_lines + 1, "a refused request is not logged"


def test_the_readmes_request_answers_and_leaves_nothing_for_git(project, project_env, service, expected):
    """The README's copy-paste commands, as a user runs them with `make serve` up: one held-out row
    written to request.json, then curl to /predict; the file is not left for `git add -A`."""
    block = (project / "README.md").read_text().split("# one held-out row as a request body", 1)[1]
    write, send = block.split("```", 1)[0].strip().splitlines()[1:]  # below the comment line
    run(["bash", "-c", write], project, project_env)
    answer = run(["bash", "-c", send.replace("http://127.0.0.1:8000", service.url)], project, project_env)
    assert json.loads(answer.stdout)["predictions"] == expected["predictions"][:1]
    assert run(["git", "status", "--porcelain", "--", "request.json"], project, project_env).stdout == ""


def test_make_score_writes_the_model_files_predictions(project, project_env, expected):
    run(["make", "score", "OUTPUT=reports/scores.csv"], project, project_env)
    with (project / "reports/scores.csv").open() as handle:
        scored = list(csv.DictReader(handle))
    assert [int(row["prediction"]) for row in scored] == expected["predictions"]
    assert "target" not in scored[0] and {"probability_0", "probability_1"} <= set(scored[0])
    bad = project / "bad.csv"
    bad.write_text("mean_radius,colour\n1.0,red\n")
    try:
        failed = run(
            ["make", "score", "INPUT=bad.csv", "OUTPUT=reports/bad.csv"], project, project_env, ok=False
        )
    finally:
        bad.unlink()
    assert failed.returncode != 0 and "missing column" in failed.stderr and "colour" in failed.stderr


def test_make_package_fills_build_model(project, project_env):
    run(["make", "package"], project, project_env)
    folder = project / "build/model"
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.json", "model.joblib", "signature.json"]
    assert (folder / "model.joblib").read_bytes() == (project / "models/model.joblib").read_bytes()
    assert json.loads((folder / "signature.json").read_text()) == json.loads(
        (project / "models/signature.json").read_text()
    )
    metadata = json.loads((folder / "metadata.json").read_text())
    head = run(["git", "rev-parse", "HEAD"], project, project_env).stdout.strip()
    assert metadata["source"] == "models/model.joblib" and metadata["git_commit"] == head
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], project, project_env).stdout
    assert "build/" not in status, "build/ is ignored by git"


def dockerfile_stages(root: Path) -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, (keyword, arguments), grouped by stage."""
    text = re.sub(r"\\\n", " ", (root / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, arguments = line.strip().partition(" ")
            if keyword == "FROM":
                stages.append([])
            if stages:  # global ARGs (before the first FROM) name the base images
                stages[-1].append((keyword, arguments.strip()))
    return stages


def test_image_recipe_serves_the_packaged_model_without_docker(
    held, project, project_env, expected, tmp_path
):
    """No docker daemon here: the Dockerfile's own RUN, COPY and ENV lines replayed on the host, with
    its absolute paths (/venv, /app) moved under a temporary folder. The environment holds only the
    `serve` group and the service starts from the packaged model, as in the image."""
    run(["make", "package"], project, project_env)  # build/model/, what `make image` builds from
    _uv, build, final = dockerfile_stages(project)

    def rebase(text: str) -> str:
        return re.sub(r"(?<![\w.])/(venv|app)\b", lambda m: str(tmp_path / m.group(1)), text)

    def replay(stage, env: dict[str, str]) -> dict[str, str]:
        workdir = tmp_path
        for keyword, arguments in stage:
            if keyword == "WORKDIR":
                workdir = Path(rebase(arguments))
                workdir.mkdir(parents=True, exist_ok=True)
            elif keyword == "ENV":
                for pair in shlex.split(arguments):
                    name, _, value = pair.partition("=")
                    env[name] = rebase(value).replace("$PATH", env["PATH"])
            elif keyword == "COPY" and not arguments.startswith("--from"):
                *sources, target = arguments.split()
                for source in sources:
                    destination = workdir / target
                    if (project / source).is_dir():
                        shutil.copytree(project / source, destination)
                    else:
                        destination.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(project / source, destination)
            elif keyword == "RUN" and "useradd" not in arguments:
                # uv's package cache stands in for the registry the image build downloads from, and
                # bytecode is left to the first import (test_container.py builds the real image).
                command = rebase(arguments).replace(" --no-cache", "")
                run(["bash", "-euc", command], workdir, {**env, "UV_COMPILE_BYTECODE": "0"})
        return env

    host = {k: v for k, v in project_env.items() if k not in ("UV_PROJECT_ENVIRONMENT", "VIRTUAL_ENV")}
    replay(build, dict(host))
    env = replay(final, dict(host))
    (tmp_path / "app/logs/predictions").mkdir(parents=True, exist_ok=True)
    freeze = run(["uv", "pip", "freeze", "--python", str(tmp_path / "venv/bin/python")], tmp_path, host)
    packages = {line.split("==")[0].lower() for line in freeze.stdout.splitlines()}
    assert {"fastapi", "scikit-learn", "uvicorn"} <= packages, freeze.stdout
    assert not packages & {"mlflow", "dvc", "great-expectations", "pytest"}, "serving only"

    command = json.loads(dict(final)["CMD"])
    command[command.index("0.0.0.0")], command[command.index("8000")] = "127.0.0.1", "{port}"
    service = Service(tmp_path / "app", env, command)
    try:
        service.wait()
        assert "models/model.joblib" in json.loads(http(service.url + "/health")[1])["model"]
        status, body = service.predict({"instances": held})
        assert status == 200 and body["predictions"] == expected["predictions"]
        assert service.predict({"instances": [{"colour": 1}]})[0] == 422
    finally:
        service.stop()
    assert list((tmp_path / "app/logs/predictions").glob("*.jsonl")), (
        "predictions logged where the image keeps them"
    )


def registry_env(project: Path, tmp: Path, alias: str) -> dict[str, str]:
    return {
        "MODEL_URI": f"models:/{MODEL_NAME}@{alias}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "PREDICTION_LOG_DIR": str(tmp / "registry-log"),
    }


def test_service_serves_the_registry_model_by_alias(held, project, project_env, expected, tmp_path):
    service = Service(project, project_env, **registry_env(project, tmp_path, "challenger")).wait(120)
    try:
        assert json.loads(http(service.url + "/health")[1])["model"] == f"models:/{MODEL_NAME}@challenger"
        rows = held
        status, body = service.predict({"instances": rows})
        assert status == 200 and body["predictions"] == expected["predictions"]
        assert service.predict({"instances": [{"colour": 1}]})[0] == 422
    finally:
        service.stop()
    assert len(list((tmp_path / "registry-log").glob("*.jsonl"))) == 1


def test_make_package_from_the_registry(project, project_env, tmp_path):
    env = {**project_env, **registry_env(project, tmp_path, "challenger")}
    run(["make", "package"], project, env)
    metadata = json.loads((project / "build/model/metadata.json").read_text())
    assert metadata["source"] == f"models:/{MODEL_NAME}@challenger"
    signature = json.loads((project / "build/model/signature.json").read_text())
    assert signature == json.loads((project / "models/signature.json").read_text())
    failed = run(["make", "package"], project, {**env, "MODEL_URI": f"models:/{MODEL_NAME}@nope"}, ok=False)
    assert failed.returncode != 0 and "package FAILED: cannot package" in failed.stderr


def test_service_refuses_to_start_with_an_unknown_alias(project, project_env, tmp_path):
    service = Service(project, project_env, **registry_env(project, tmp_path, "no-such-alias"))
    try:
        assert service.process.wait(120) != 0
    finally:
        service.stop()
    assert "serve FAILED: cannot serve" in service.output() and "no-such-alias" in service.output()
    assert "serve] Error 1" in service.output(), "the serve command itself exits 1 (make then exits 2)"

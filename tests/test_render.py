"""Rendering: the exact files per answer combination, fully rendered, all parseable."""

from __future__ import annotations

import itertools
import json
import py_compile
import re
import tomllib

import pytest
import yaml

from .conftest import CSV_ANSWERS, files_of, render

# Every generated file, for the default answers; `{pkg}` is the package name.
BASE_FILES = """
.copier-answers.yml .dvc/.gitignore .dvc/config .dvcignore .gitignore .pre-commit-config.yaml
LICENSE Makefile README.md dvc.yaml params.yaml pyproject.toml
business/README.md business/kpis.yaml data/README.md data/expectations/raw.json infra/README.md
src/{pkg}/__init__.py src/{pkg}/__main__.py src/{pkg}/config.py src/{pkg}/errors.py
src/{pkg}/data/README.md src/{pkg}/data/__init__.py src/{pkg}/data/collect.py
src/{pkg}/data/prepare.py src/{pkg}/data/suite.py src/{pkg}/data/validate.py
src/{pkg}/registry/README.md src/{pkg}/registry/__init__.py src/{pkg}/registry/promote.py
src/{pkg}/registry/tracking.py
src/{pkg}/training/README.md src/{pkg}/training/__init__.py src/{pkg}/training/estimators.py
src/{pkg}/training/evaluate.py src/{pkg}/training/train.py
tests/__init__.py tests/conftest.py tests/test_data.py tests/test_pipeline.py tests/test_registry.py
tests/test_training.py
""".split()

JINJA_LEFTOVER = re.compile(r"(?<!\$)\{\{|\{%|\{#|%\}|#\}")

COMBINATIONS = [
    {"ml_task": task, "data_source": source, "license": licence}
    for (task, source), licence in zip(
        itertools.product(["classification", "regression"], ["sample", "csv"]),
        ["MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary"],
        strict=True,
    )
] + [
    {"ml_task": "classification", "data_source": "sample", "license": "Proprietary"},
    {"ml_task": "regression", "data_source": "csv", "license": "MIT", "python_version": "3.12"},
]


def expected_files(answers: dict, pkg: str = "my_ml_project") -> set[str]:
    files = {name.format(pkg=pkg) for name in BASE_FILES}
    if answers.get("license", "MIT") == "Proprietary":
        files.remove("LICENSE")
    return files


def answers_for(combination: dict) -> dict:
    answers = dict(combination)
    if answers["data_source"] == "csv":
        answers.update(CSV_ANSWERS)
    return answers


@pytest.fixture(scope="module", params=COMBINATIONS, ids=lambda c: "-".join(c.values()))
def rendered(request, tmp_path_factory):
    answers = answers_for(request.param)
    return answers, render(tmp_path_factory.mktemp("render") / "project", **answers)


def test_exact_file_set(rendered):
    answers, root = rendered
    assert files_of(root) == expected_files(answers)


def test_nothing_left_unrendered(rendered):
    _, root = rendered
    for path in root.rglob("*"):
        assert not JINJA_LEFTOVER.search(path.name), path
        if path.is_file():
            assert not JINJA_LEFTOVER.search(path.read_text(encoding="utf-8")), path


def test_every_file_parses(rendered):
    _, root = rendered
    for path in root.rglob("*"):
        if path.suffix in (".yaml", ".yml"):
            yaml.safe_load(path.read_text())
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text())
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".py":
            py_compile.compile(str(path), cfile=str(path.parent / "__pycache__" / "check.pyc"), doraise=True)


def test_answers_reach_the_settings(rendered):
    answers, root = rendered
    recorded = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert {k: recorded[k] for k in answers} == answers
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["task"] == answers["ml_task"]
    assert params["data"]["source"] == answers["data_source"]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == f">={answers.get('python_version', '3.11')}"
    assert ("license" in project) == (answers["license"] != "Proprietary")
    suite = json.loads((root / "data/expectations/raw.json").read_text())
    columns = {e["kwargs"].get("column") for e in suite["expectations"]}
    if answers["data_source"] == "csv":
        assert params["data"] == {"source": "csv", "location": "data/input.csv", "target": "label"}
        assert "label" in columns
    else:
        assert params["data"]["target"] == "target"
        assert {"classification": "mean_radius", "regression": "bmi"}[answers["ml_task"]] in columns
    kpis = yaml.safe_load((root / "business/kpis.yaml").read_text())
    assert kpis["primary_metric"] in kpis["thresholds"]
    plots = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["evaluate"]["plots"]
    names = {next(iter(p)).rsplit("/", 1)[-1] for p in plots}
    assert names == (
        {"confusion.csv", "roc.csv"} if answers["ml_task"] == "classification" else {"residuals.csv"}
    )


def test_custom_names_flow_everywhere(tmp_path):
    root = render(tmp_path / "p", project_name="Churn Predictor", package_name="churn", github_owner="acme")
    assert files_of(root) == expected_files({}, pkg="churn")
    assert "python -m churn collect" in (root / "dvc.yaml").read_text()
    assert yaml.safe_load((root / "params.yaml").read_text())["tracking"]["model_name"] == "churn-predictor"


def test_local_csv_path_is_a_dvc_dependency(tmp_path):
    source = tmp_path / "input.csv"
    root = render(tmp_path / "p", **{**CSV_ANSWERS, "csv_location": str(source)})
    collect = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["collect"]
    assert str(source) in collect["deps"]
    remote = (root / ".dvc/config").read_text()
    assert "url = ../../my-ml-project-dvc-storage" in remote

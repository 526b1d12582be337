"""Rendering: the exact files per answer combination, fully rendered, all parseable, answers applied.

Fast: nothing is installed. (That the shipped sample suites are exactly what the generated
profiler writes needs the installed environment: see test_lifecycle.py.)
"""

from __future__ import annotations

import ast
import datetime
import itertools
import json
import py_compile
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from .conftest import CORE_FILES, REPO_ROOT, files_of, lint, render, working_tree

# ---------------------------------------------------------------------------------------------
# THE list of an mlops project's files: the shared core (conftest.py) and the profile's own.
# `{pkg}` is the package name. When the template gains a file, add it here (or to
# `expected_files` when it depends on an answer).
COMMON_FILES = (
    CORE_FILES
    + """
Dockerfile
.dockerignore
.github/workflows/README.md
.github/workflows/ci.yml
.github/workflows/deploy.yml
.github/workflows/monitor.yml
.github/workflows/retrain.yml
src/{pkg}/data/README.md
src/{pkg}/data/__init__.py
src/{pkg}/data/collect.py
src/{pkg}/data/prepare.py
src/{pkg}/data/profile.py
src/{pkg}/data/roles.py
src/{pkg}/data/suite.py
src/{pkg}/data/table.py
src/{pkg}/data/validate.py
src/{pkg}/training/README.md
src/{pkg}/training/__init__.py
src/{pkg}/training/estimators.py
src/{pkg}/training/evaluate.py
src/{pkg}/training/flavour.py
src/{pkg}/training/metrics.py
src/{pkg}/training/plots.py
src/{pkg}/training/train.py
src/{pkg}/deployment/README.md
src/{pkg}/deployment/__init__.py
src/{pkg}/deployment/app.py
src/{pkg}/deployment/batch.py
src/{pkg}/deployment/fairness.py
src/{pkg}/deployment/loadtest.py
src/{pkg}/deployment/model.py
src/{pkg}/deployment/package.py
src/{pkg}/deployment/qa.py
src/{pkg}/monitoring/README.md
src/{pkg}/monitoring/__init__.py
src/{pkg}/monitoring/drift.py
tests/test_data.py
tests/test_monitoring.py
tests/test_pipeline.py
tests/test_qa.py
tests/test_registry.py
tests/test_serving.py
tests/test_settings.py
tests/test_training.py
""".split()
)


def expected_files(answers: dict, pkg: str = "my_ml_project") -> set[str]:
    files = {name.format(pkg=pkg) for name in COMMON_FILES}
    if answers.get("license", "MIT") != "Proprietary":
        files.add("LICENSE")
    if answers.get("data_source", "sample") == "sample":
        files.add("data/expectations/raw.json")  # a CSV's contract is profiled on the first run
    if answers.get("engine") == "dask":
        files |= {
            name.format(pkg=pkg)
            for name in (
                "src/{pkg}/cluster/README.md",
                "src/{pkg}/cluster/__init__.py",
                "src/{pkg}/cluster/client.py",
                "src/{pkg}/cluster/stages.py",
                "tests/test_cluster.py",
            )
        }
    return files


# ---------------------------------------------------------------------------------------------
CSV_ANSWERS = {"data_source": "csv", "csv_location": "data/input.csv", "target_column": "label"}
LICENCES = ["MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary"]
LICENCE_HEADINGS = {
    "MIT": "MIT License",
    "Apache-2.0": "Apache License",
    "BSD-3-Clause": "BSD 3-Clause License",
}
TASK_METRICS = {"classification": {"accuracy", "f1", "roc_auc"}, "regression": {"r2", "rmse", "mae"}}
FIRST_RUN = "# from the data on the first run"
SAMPLE_COLUMNS = {
    "classification": {"mean_radius", "worst_texture", "target"},
    "regression": {"age", "bmi", "s6", "target"},
}
# Jinja left in the output. `${{` (GitHub Actions) and `${paths.x}` (DVC) are not Jinja.
JINJA_LEFTOVER = re.compile(r"(?<!\$)\{\{|\{%|\{#")

# Every task x source combination, the four licences spread over them (a smaller axis),
# plus the default answers and the other supported Python.
COMBINATIONS = (
    [{}]
    + [
        {"ml_task": task, "data_source": source, "license": licence}
        for (task, source), licence in zip(
            itertools.product(["classification", "regression"], ["sample", "csv"]), LICENCES, strict=True
        )
    ]
    + [{"ml_task": "regression", "data_source": "sample", "license": "MIT", "python_version": "3.12"}]
    + [{"ml_task": "regression", "data_source": "csv", "license": "MIT", "engine": "dask"}]
)


def answers_for(combination: dict) -> dict:
    answers = dict(combination)
    if answers.get("data_source") == "csv":
        answers.update(CSV_ANSWERS)
    return answers


def combination_id(combination: dict) -> str:
    return "-".join(combination.values()) or "defaults"


@pytest.fixture(scope="module", params=COMBINATIONS, ids=combination_id)
def rendered(request, tmp_path_factory):
    answers = answers_for(request.param)
    # From git, as users render it: the answers file records the source and the commit.
    dst = tmp_path_factory.mktemp("render") / "my-ml-project"
    return answers, render(dst, src=REPO_ROOT, vcs_ref="HEAD", **answers)


def package_docstring(init) -> str | None:
    return ast.get_docstring(ast.parse(init.read_text()))


def answer(answers: dict, key: str):
    defaults = {
        "ml_task": "classification",
        "data_source": "sample",
        "license": "MIT",
        "python_version": "3.11",
        "engine": "local",
    }
    return answers.get(key, defaults.get(key))


def test_exact_file_set(rendered):
    answers, root = rendered
    assert sorted(files_of(root)) == sorted(expected_files(answers))
    assert not (root / ".git").exists(), "an untrusted copy must not run anything (no git init)"


def test_nothing_left_unrendered(rendered):
    _, root = rendered
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        assert not JINJA_LEFTOVER.search(relative), relative
        assert not relative.endswith(".jinja"), relative
        assert "{" not in path.name and "}" not in path.name, relative
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            leftover = JINJA_LEFTOVER.search(text)
            assert not leftover, f"{relative}: {text[max(0, leftover.start() - 60) : leftover.end() + 60]!r}"


def test_every_file_parses(rendered, tmp_path):
    answers, root = rendered
    checked = {"yaml": 0, "toml": 0, "json": 0, "py": 0}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        name = path.name
        if path.suffix in (".yaml", ".yml") or name == ".copier-answers.yml":
            yaml.safe_load(path.read_text(encoding="utf-8"))
            checked["yaml"] += 1
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text(encoding="utf-8"))
            checked["toml"] += 1
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
            checked["json"] += 1
        elif path.suffix == ".py":
            py_compile.compile(str(path), cfile=str(tmp_path / f"{checked['py']}.pyc"), doraise=True)
            checked["py"] += 1
    # dvc.yaml params.yaml kpis.yaml pre-commit answers / pyproject / a sample's raw.json and the
    # maturity report's schema / modules
    suites = 1 if answer(answers, "data_source") == "sample" else 0  # a CSV's is profiled on the first run
    suites += 1  # src/<pkg>/ci/maturity/schema.json
    assert checked["yaml"] >= 5 and checked["toml"] == 1 and checked["json"] == suites and checked["py"] >= 20


def test_the_code_of_each_set_of_answers_passes_the_projects_own_lint(rendered):
    lint(rendered[1])


def test_answers_file_records_the_answers(rendered):
    answers, root = rendered
    recorded = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert {k: recorded[k] for k in answers} == answers
    assert recorded["_src_path"] == str(REPO_ROOT), "an absolute source keeps `copier update` working"
    assert recorded["_commit"]
    assert recorded["project_slug"] == "my-ml-project" and recorded["package_name"] == "my_ml_project"
    if answer(answers, "data_source") == "sample":
        # Questions that were not asked are not recorded either.
        assert "csv_location" not in recorded and "target_column" not in recorded


def test_params_follow_task_source_and_target(rendered):
    answers, root = rendered
    params = yaml.safe_load((root / "params.yaml").read_text())
    task, source = answer(answers, "ml_task"), answer(answers, "data_source")
    assert params["task"] == task
    if source == "csv":
        expected = {"source": "csv", "location": "data/input.csv", "target": "label"}
    else:
        dataset = {"classification": "breast_cancer", "regression": "diabetes"}[task]
        expected = {"source": "sample", "dataset": dataset, "target": "target"}
    if task == "classification":  # which class f1, precision, recall and roc_auc are about
        expected["positive_class"] = None
    assert params["data"] == expected
    if answer(answers, "engine") == "dask":  # the estimator that trains on the cluster, and its engine
        assert params["train"]["estimator"] == "lightgbm" and params["engine"]["name"] == "dask"
        dependencies = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
        assert {"dask", "lightgbm"} <= {re.split(r"[\[<>=]", d)[0] for d in dependencies}
        assert (
            "src/my_ml_project/cluster"
            in yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["train"]["deps"]
        )
    else:
        assert "engine" not in params
        assert (
            params["train"]["estimator"]
            == {"classification": "logistic_regression", "regression": "ridge"}[task]
        )
    assert params["tracking"] == {
        "uri": "sqlite:///mlflow.db",
        "experiment": "my-ml-project",
        "model_name": "my-ml-project",
    }


def test_pyproject_follows_python_version_and_licence(rendered):
    answers, root = rendered
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    project, version = pyproject["project"], answer(answers, "python_version")
    assert project["name"] == "my-ml-project"
    assert project["requires-python"] == f">={version}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + version.replace(".", "")
    assert pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/my_ml_project"]
    licence = answer(answers, "license")
    if licence == "Proprietary":
        assert "license" not in project
    else:
        assert project["license"] == licence
        text = (root / "LICENSE").read_text()
        assert text.startswith(LICENCE_HEADINGS[licence])
        if licence != "Apache-2.0":  # the Apache text has no copyright line of its own
            assert f"{datetime.date.today().year}" in text and "ML Team" in text


def test_shipped_suite_has_the_right_kind(rendered):
    """The sample suites are profiled contracts; a CSV project's is profiled on the first run."""
    answers, root = rendered
    if answer(answers, "data_source") == "csv":
        assert not (root / "data/expectations/raw.json").exists()
        return
    suite = json.loads((root / "data/expectations/raw.json").read_text())
    assert suite["name"] == "raw"
    kinds = [e["type"] for e in suite["expectations"]]
    columns = {e["kwargs"].get("column") for e in suite["expectations"]} - {None}
    column_set = set(suite["expectations"][0]["kwargs"]["column_set"])
    assert kinds[0] == "expect_table_columns_to_match_set"
    assert SAMPLE_COLUMNS[answer(answers, "ml_task")] <= column_set
    assert columns == column_set
    assert "expect_column_values_to_be_between" in kinds


def test_pipeline_definition_matches_params_and_task(rendered):
    answers, root = rendered
    params = yaml.safe_load((root / "params.yaml").read_text())
    dvc_text = (root / "dvc.yaml").read_text()
    stages = yaml.safe_load(dvc_text)["stages"]
    assert list(stages) == ["collect", "profile", "validate", "prepare", "train", "evaluate"]
    for name, stage in stages.items():
        assert stage["cmd"] == f"python -m my_ml_project {name}"
        for dep in stage.get("deps", []):
            if not dep.startswith("${") and dep != answers.get("csv_location"):  # the user's own CSV
                assert (root / dep).exists(), f"{name} depends on missing {dep}"
    # Every ${paths.x} DVC interpolates exists in params.yaml.
    if answer(answers, "data_source") == "csv":
        assert answers["csv_location"] in stages["collect"]["deps"]
    for key in re.findall(r"\$\{paths\.(\w+)\}", dvc_text):
        assert key in params["paths"], key
    plots = {next(iter(p)).rsplit("/", 1)[-1] for p in stages["evaluate"]["plots"]}
    task = answer(answers, "ml_task")
    assert plots == ({"confusion.csv", "roc.csv"} if task == "classification" else {"residuals.csv"})
    kpis_text = (root / "business/kpis.yaml").read_text()
    kpis = yaml.safe_load(kpis_text)
    assert kpis["baseline_margin"] == 0.05
    if answer(answers, "data_source") == "csv":  # the first run writes defaults that suit the data
        assert kpis["primary_metric"] is None and kpis["thresholds"] == {}
        assert kpis_text.count(FIRST_RUN) == 2 + bool(answers.get("sensitive_feature"))
    else:
        assert kpis["primary_metric"] in kpis["thresholds"]
        assert set(kpis["thresholds"]) <= TASK_METRICS[task]


def test_makefile_targets_call_the_package(rendered):
    _, root = rendered
    makefile = (root / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, flags=re.M))
    assert {"setup", "lint", "test", "repro", "suite", "promote"} <= targets
    assert "python -m my_ml_project suite" in makefile
    assert "python -m my_ml_project promote" in makefile
    assert not [line for line in makefile.splitlines() if line.startswith(" ")], "recipes need tabs"


def test_custom_names_flow_everywhere(tmp_path):
    root = render(
        tmp_path / "p",
        project_name="Churn Predictor",
        package_name="churn",
        github_owner="acme",
        author_name="Ada Lovelace",
        description="Predict which customers leave",
    )
    assert files_of(root) == expected_files({}, pkg="churn")
    assert "python -m churn collect" in (root / "dvc.yaml").read_text()
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["tracking"]["model_name"] == "churn-predictor"
    assert "python -m churn promote" in (root / "Makefile").read_text()
    readme = (root / "README.md").read_text()
    assert readme.startswith("# Churn Predictor") and "Predict which customers leave" in readme
    assert package_docstring(root / "src/churn/__init__.py") == "Predict which customers leave"
    assert "from churn." in (root / "tests/test_data.py").read_text()
    assert (
        yaml.safe_load((root / "business/kpis.yaml").read_text())["objective"]
        == "Predict which customers leave"
    )
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert pyproject["authors"] == [{"name": "Ada Lovelace", "email": "ml-team@example.com"}]
    assert "Ada Lovelace" in (root / "LICENSE").read_text()
    assert "url = ../../churn-predictor-dvc-storage" in (root / ".dvc/config").read_text()


def test_quotes_in_free_text_answers_stay_valid(tmp_path):
    """Free text lands in TOML, YAML and a Python docstring: quotes must not break them."""
    description = 'Flag "risky" loans: it\'s a model'
    root = render(tmp_path / "p", description=description, author_name='Jo "JJ" O\'Neil')
    assert tomllib.loads((root / "pyproject.toml").read_text())["project"]["description"] == description
    assert yaml.safe_load((root / "business/kpis.yaml").read_text())["objective"] == description
    assert package_docstring(root / "src/my_ml_project/__init__.py") == description


@pytest.mark.parametrize("description", ['Predict "churn"', r"Scores \N loans"])
def test_any_single_line_description_gives_importable_code(tmp_path, description):
    root = render(tmp_path / "p", description=description)
    init = root / "src/my_ml_project/__init__.py"
    py_compile.compile(str(init), cfile=str(tmp_path / "i.pyc"), doraise=True)
    assert package_docstring(init) == description


def test_local_csv_path_is_a_dvc_dependency(tmp_path):
    source = tmp_path / "input.csv"
    root = render(tmp_path / "p", **{**CSV_ANSWERS, "csv_location": str(source)})
    collect = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["collect"]
    assert str(source) in collect["deps"]


def test_csv_url_is_not_a_file_dependency(tmp_path):
    root = render(tmp_path / "p", **{**CSV_ANSWERS, "csv_location": "https://example.com/train.csv"})
    collect = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["collect"]
    assert collect["deps"] == ["src/my_ml_project/data/collect.py"]
    assert (
        yaml.safe_load((root / "params.yaml").read_text())["data"]["location"]
        == "https://example.com/train.csv"
    )


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("s3://bucket/path", "s3://bucket/path"),
        ("/srv/dvc-store", "/srv/dvc-store"),
        ("storage", "../storage"),  # relative to the project; .dvc/config sits one level down
    ],
)
def test_dvc_remote_url_is_resolved_from_the_project(tmp_path, remote, url):
    root = render(tmp_path / "p", dvc_remote=remote)
    assert f"url = {url}\n" in (root / ".dvc/config").read_text() + "\n"


def test_csv_location_with_yaml_special_characters_stays_a_path(tmp_path):
    location = "data/export: 2024 #1.csv"
    root = render(tmp_path / "p", **{**CSV_ANSWERS, "csv_location": location})
    assert location in yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["collect"]["deps"]


@pytest.mark.parametrize(
    "answers",
    [
        {},
        {
            "profile": "llmops",
            "base_model": "tiny",
            "llm_parts": ["retrieval", "finetuning", "guardrails", "agent"],
        },
    ],
    ids=["mlops", "llmops"],
)
def test_a_render_of_this_process_is_what_copiers_own_command_writes(tmp_path, answers):
    """The suite's renders share Copier's compiled templates and skip its index sync where there is
    no repository (``_lighter_copier`` in conftest.py): after other answers were rendered here, a
    render is byte for byte what `copier copy` writes in a process of its own."""
    render(tmp_path / "before" / "my-ml-project", ml_task="regression", engine="dask")
    ours = render(tmp_path / "ours" / "my-ml-project", **answers)
    theirs = tmp_path / "theirs" / "my-ml-project"
    data = [f"--data={k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in answers.items()]
    copier = str(Path(sys.executable).with_name("copier"))
    subprocess.run(
        [copier, "copy", "--defaults", "--quiet", *data, str(working_tree()), str(theirs)],
        check=True,
        capture_output=True,
    )
    assert files_of(ours) == files_of(theirs)
    differ = [name for name in files_of(ours) if (ours / name).read_bytes() != (theirs / name).read_bytes()]
    assert differ == []

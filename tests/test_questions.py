"""Every bad answer is refused with a message saying what is wrong and what is expected, and
nothing is written.

How Copier surfaces it (9.19, answers through ``data=`` with ``defaults=True``): the validator's
rendered text becomes ``ValueError("Validation error for question '<name>': <text>")`` raised
from ``run_copy`` before any file is rendered; a value outside ``choices`` gives
``ValueError("Invalid choice for '<name>': ...")``. Defaults are validated too.
"""

from __future__ import annotations

import pytest
import yaml

from .conftest import UV, render, run

CSV = {"data_source": "csv", "csv_location": "data/train.csv", "target_column": "label"}

# (answers, question named in the error, key words of the validator's message)
BAD_ANSWERS = [
    ({"project_name": ""}, "project_name", "the name is empty"),
    ({"project_name": "   "}, "project_name", "the name is empty"),
    ({"project_name": "42 Things"}, "project_name", "Start the name with a letter"),
    ({"project_name": "x" * 81}, "project_name", "Keep the name to 80 characters"),
    ({"project_slug": "MyProject"}, "project_slug", "single dashes"),
    ({"project_slug": "my project"}, "project_slug", "single dashes"),
    ({"project_slug": "my--project"}, "project_slug", "single dashes"),
    ({"project_slug": "-project"}, "project_slug", "single dashes"),
    ({"package_name": "my-project"}, "package_name", "e.g. churn_predictor"),
    ({"package_name": "my project"}, "package_name", "e.g. churn_predictor"),
    ({"package_name": "1project"}, "package_name", "e.g. churn_predictor"),
    ({"package_name": "class"}, "package_name", "is a Python keyword"),
    ({"package_name": "match"}, "package_name", "is a Python keyword"),
    ({"package_name": "mlflow"}, "package_name", "shadows a module"),
    ({"package_name": "tests"}, "package_name", "shadows a module"),
    ({"package_name": "logging"}, "package_name", "shadows a module"),  # standard library
    ({"sensitive_feature": "gender"}, "sensitive_feature", "Use a sample column"),
    ({"ml_task": "regression", "sensitive_feature": "mean_radius"}, "sensitive_feature", 'e.g. "age"'),
    ({"package_name": "fastapi"}, "package_name", "shadows a module"),  # a dependency
    ({"package_name": "great_expectations"}, "package_name", "shadows a module"),
    # Derived defaults are validated as well: this name's package default is a keyword.
    ({"project_name": "Class"}, "package_name", "is a Python keyword"),
    ({"description": ""}, "description", "description is empty"),
    ({"author_name": " "}, "author_name", "author name is empty"),
    ({"author_email": "not-an-email"}, "author_email", "Use name@domain.tld"),
    ({"author_email": "a@b"}, "author_email", "Use name@domain.tld"),
    ({"author_email": "a b@example.com"}, "author_email", "Use name@domain.tld"),
    ({"github_owner": "-acme"}, "github_owner", "inner single dashes"),
    ({"github_owner": "acme-"}, "github_owner", "inner single dashes"),
    ({"github_owner": "ac--me"}, "github_owner", "inner single dashes"),
    ({"github_owner": "acme_corp"}, "github_owner", "inner single dashes"),
    ({"github_owner": "a" * 40}, "github_owner", "inner single dashes"),
    ({"github_repo": "my repo"}, "github_repo", "Use up to 100 letters"),
    ({"github_repo": ".."}, "github_repo", "Use up to 100 letters"),
    ({"github_repo": "r" * 101}, "github_repo", "Use up to 100 letters"),
    ({"python_version": "3.10"}, "python_version", "X from 11 to 15"),
    ({"python_version": "2.7"}, "python_version", "X from 11 to 15"),
    ({"python_version": "3"}, "python_version", "X from 11 to 15"),
    ({"python_version": "abc"}, "python_version", "X from 11 to 15"),
    ({"python_version": "3.11.4"}, "python_version", "X from 11 to 15"),
    ({"python_version": "3.16"}, "python_version", "X from 11 to 15"),
    ({"data_source": "csv"}, "csv_location", "none given"),
    ({**CSV, "csv_location": ""}, "csv_location", "none given"),
    ({**CSV, "csv_location": "  "}, "csv_location", "none given"),
    ({**CSV, "csv_location": "ftp://host/data.csv"}, "csv_location", "Use a local path or an http(s) URL"),
    ({**CSV, "csv_location": "s3://bucket/data.csv"}, "csv_location", "Use a local path or an http(s) URL"),
    ({**CSV, "target_column": ""}, "target_column", "target column is empty"),
    ({**CSV, "target_column": "a,b"}, "target_column", "without commas"),
    ({"mlflow_tracking_uri": "mlflow.db"}, "mlflow_tracking_uri", "Use sqlite:///mlflow.db"),
    ({"mlflow_tracking_uri": "sqlite://"}, "mlflow_tracking_uri", "Use sqlite:///mlflow.db"),
    ({"mlflow_tracking_uri": "ftp://host"}, "mlflow_tracking_uri", "Use sqlite:///mlflow.db"),
    ({"mlflow_tracking_uri": "mysql://u@db/mlflow"}, "mlflow_tracking_uri", "Write mysql+pymysql://"),
    ({"mlflow_tracking_uri": "mssql://u@db/mlflow"}, "mlflow_tracking_uri", "driver not supported"),
    ({"mlflow_tracking_uri": "postgresql+pg8000://u@db/m"}, "mlflow_tracking_uri", "driver not supported"),
    ({"dvc_remote": "ftp://host/store"}, "dvc_remote", "unsupported scheme"),
    ({"dvc_remote": "webdav://host/store"}, "dvc_remote", "unsupported scheme"),
    ({"dvc_remote": " "}, "dvc_remote", "it is empty"),
    ({"production_reviewers": ""}, "production_reviewers", "at least one reviewer"),
    ({"production_reviewers": "@alice"}, "production_reviewers", "org/team slugs (no @)"),
    ({"production_reviewers": "alice,-bob"}, "production_reviewers", "org/team slugs (no @)"),
    ({"production_reviewers": "acme/ml team"}, "production_reviewers", "org/team slugs (no @)"),
    ({"production_reviewers": "a,b,c,d,e,f,g"}, "production_reviewers", "at most 6 reviewers"),
    ({"team_business": "analysts"}, "team_business", "Use @user or @org/team"),
    ({"team_data": " "}, "team_data", "at least one GitHub handle"),
    ({"team_ml": "@acme/"}, "team_ml", "Use @user or @org/team"),
    ({"team_ops": "ops@acme.com"}, "team_ops", "Use @user or @org/team"),
    ({"sensitive_feature": "sex,age"}, "sensitive_feature", "without commas"),
    ({"sensitive_feature": " sex"}, "sensitive_feature", "leading or trailing spaces"),
]

BAD_CHOICES = [
    ({"license": "GPL-3.0"}, "license"),
    ({"ml_task": "clustering"}, "ml_task"),
    ({"data_source": "postgres"}, "data_source"),
]


def refused(tmp_path, answers: dict) -> str:
    """Render ``answers``; return the error message, after checking nothing was written."""
    dst = tmp_path / "project"
    with pytest.raises(ValueError) as error:
        render(dst, **answers)
    assert not dst.exists() or not any(dst.iterdir()), "a refused answer left files behind"
    return str(error.value)


# Messages start with what to do: one of these verbs.
FIX_FIRST = ("Use", "Give", "Choose", "Write", "Name", "Enter", "Keep", "Start")
NO_ECHO = ("project_name", "mlflow_tracking_uri", "dvc_remote")  # the fix says it all


@pytest.mark.parametrize(("answers", "question", "message"), BAD_ANSWERS, ids=lambda v: repr(v)[:40])
def test_bad_answer_is_refused_before_anything_is_written(tmp_path, answers, question, message):
    error = refused(tmp_path, answers)
    prefix = f"Validation error for question '{question}': "
    assert error.startswith(prefix)
    assert message in error
    text = error[len(prefix) :]
    # The fix first, in one line that fits an 80-column terminal (long values are cut short).
    assert text.split()[0] in FIX_FIRST, text
    assert "\n" not in text and len(text) <= 80, f"{len(text)} columns: {text}"
    # The message echoes the offending value where there is one to echo.
    value = answers.get(question, "")
    if value.strip() == value and value and question not in NO_ECHO and "," not in value:
        shown = value if len(value) <= 16 else value[:13] + "..."
        assert f'"{shown}"' in error


@pytest.mark.parametrize(("answers", "question"), BAD_CHOICES, ids=lambda v: repr(v)[:40])
def test_answer_outside_the_choices_is_refused(tmp_path, answers, question):
    error = refused(tmp_path, answers)
    assert error.startswith(f"Invalid choice for '{question}'")
    assert repr(answers[question]) in error


def test_refusal_keeps_an_existing_destination_untouched(tmp_path):
    dst = tmp_path / "project"
    dst.mkdir()
    (dst / "notes.txt").write_text("mine\n")
    with pytest.raises(ValueError, match="single dashes"):
        render(dst, project_slug="Bad Slug")
    assert sorted(p.name for p in dst.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    "answers",
    [
        {"project_name": "A"},
        {"project_name": "Churn Predictor 2", "project_slug": "churn-predictor-2"},
        {"package_name": "_private_pkg"},
        {"python_version": "3.13"},
        {"github_owner": "a-b-c", "github_repo": "my.repo_2"},
        {"github_owner": "a" * 39},
        {"author_email": "first.last+ml@sub.example.co.uk"},
        {"mlflow_tracking_uri": "http://mlflow.internal:5000"},
        {"mlflow_tracking_uri": "postgresql+psycopg2://user@db/mlflow"},
        {"mlflow_tracking_uri": "databricks"},
        {"mlflow_tracking_uri": "sqlite:////var/lib/mlflow.db"},
        {"dvc_remote": "s3://bucket/path"},
        {"dvc_remote": "/mnt/shared/dvc"},
        {"production_reviewers": "alice, acme/ml-leads,bob"},
        {"team_ml": "@acme/data-science @alice", "team_ops": "@acme/platform"},
        {"sensitive_feature": "mean_radius"},
        {**CSV, "sensitive_feature": "age group"},
        {**CSV, "csv_location": "https://example.com/train.csv", "target_column": "churned"},
        {**CSV, "csv_location": "/abs/path/train.csv", "target_column": "has space"},
    ],
    ids=lambda v: repr(v)[:40],
)
def test_good_answers_are_accepted(tmp_path, answers):
    root = render(tmp_path / "project", **answers)
    recorded = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert {k: recorded[k] for k in answers} == answers


def test_csv_questions_are_skipped_for_the_sample_source(tmp_path):
    """Not asked, not validated, not recorded: a leftover bad value cannot block a sample project."""
    root = render(tmp_path / "project", data_source="sample", csv_location="ftp://ignored", target_column="")
    recorded = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert "csv_location" not in recorded and "target_column" not in recorded
    assert yaml.safe_load((root / "params.yaml").read_text())["data"]["source"] == "sample"


def test_file_store_tracking_uri_is_refused(tmp_path):
    assert "Use sqlite:///mlflow.db" in refused(tmp_path, {"mlflow_tracking_uri": "file:./mlruns"})


@pytest.mark.parametrize(
    ("uri", "driver"),
    [
        ("postgresql://mlflow@db/mlflow", "psycopg[binary]"),  # SQLAlchemy 2.1 reads it as psycopg 3
        ("postgresql+psycopg2://mlflow@db/mlflow", "psycopg2-binary"),
        ("postgresql+psycopg://mlflow@db/mlflow", "psycopg[binary]"),
        ("mysql+pymysql://mlflow@db/mlflow", "pymysql"),
        ("http://mlflow.internal:5000", None),
    ],
)
def test_a_database_tracking_uri_brings_its_driver(tmp_path, uri, driver):
    import tomllib

    root = render(tmp_path / "project", mlflow_tracking_uri=uri)
    dependencies = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    drivers = [d for d in dependencies if d.startswith(("psycopg", "pymysql"))]
    assert drivers == ([] if driver is None else [d for d in drivers if d.startswith(driver)]) and (
        driver is None or drivers
    )
    assert "mlflow_driver" not in yaml.safe_load((root / ".copier-answers.yml").read_text())


@pytest.mark.parametrize(
    "uri",
    [
        "postgresql://mlflow@db/mlflow",
        "postgresql+psycopg2://mlflow@db/mlflow",
        "postgresql+psycopg://mlflow@db/mlflow",
        "mysql+pymysql://mlflow@db/mlflow",
    ],
)
def test_each_database_uri_form_gets_the_driver_sqlalchemy_loads_for_it(tmp_path, uri, project_env):
    """The driver the project locks is the one its locked SQLAlchemy imports for the URI: the
    dialect's DBAPI imported with exactly those two packages (and psycopg's binary part)."""
    import tomllib

    root = render(tmp_path / "project", mlflow_tracking_uri=uri)
    env = {k: v for k, v in project_env.items() if k != "UV_PROJECT_ENVIRONMENT"}
    if run([UV, "lock", "--quiet"], root, {**env, "UV_OFFLINE": "1"}, ok=False).returncode:
        run([UV, "lock", "--quiet"], root, env)  # the cache lacks something: the index
    locked = {p["name"]: p["version"] for p in tomllib.loads((root / "uv.lock").read_text())["package"]}
    drivers = [name for name in ("psycopg", "psycopg-binary", "psycopg2-binary", "pymysql") if name in locked]
    assert drivers, locked.keys()
    pins = [f"--with={name}=={locked[name]}" for name in ("sqlalchemy", *drivers)]
    code = f"from sqlalchemy.engine import make_url; make_url({uri!r}).get_dialect().import_dbapi()"
    run([UV, "run", "--no-project", "--quiet", *pins, "python", "-c", code], tmp_path, env)

"""Every bad answer is refused with a message saying what is expected, and writes nothing."""

from __future__ import annotations

import pytest

from .conftest import render

BAD_ANSWERS = [
    ({"project_name": "  "}, "project name is empty"),
    ({"project_name": "42 Things"}, "must start with a letter"),
    ({"project_slug": "My Project"}, "not a valid slug"),
    ({"project_slug": "my--project"}, "not a valid slug"),
    ({"package_name": "my-project"}, "not a Python identifier"),
    ({"package_name": "1project"}, "not a Python identifier"),
    ({"package_name": "class"}, "is a Python keyword"),
    ({"package_name": "mlflow"}, "would shadow a module"),
    ({"description": ""}, "description is empty"),
    ({"author_name": " "}, "author name is empty"),
    ({"author_email": "not-an-email"}, "not an email address"),
    ({"author_email": "a@b"}, "not an email address"),
    ({"github_owner": "-acme"}, "not a valid GitHub user or organisation"),
    ({"github_owner": "acme_corp"}, "not a valid GitHub user or organisation"),
    ({"github_owner": "a" * 40}, "not a valid GitHub user or organisation"),
    ({"github_repo": "my repo"}, "not a valid GitHub repository name"),
    ({"python_version": "3.10"}, "is not supported"),
    ({"python_version": "2.7"}, "is not supported"),
    ({"python_version": "3"}, "is not supported"),
    ({"python_version": "abc"}, "is not supported"),
    ({"data_source": "csv", "csv_location": ""}, "gave no location"),
    ({"data_source": "csv", "csv_location": "ftp://host/data.csv"}, "unsupported scheme"),
    ({"data_source": "csv", "csv_location": "data.csv", "target_column": ""}, "target column is empty"),
    ({"data_source": "csv", "csv_location": "data.csv", "target_column": "a,b"}, "contains a comma"),
    ({"mlflow_tracking_uri": "mlflow.db"}, "not an MLflow tracking URI"),
    ({"mlflow_tracking_uri": "sqlite://"}, "not an MLflow tracking URI"),
    ({"dvc_remote": "ftp://host/store"}, "unsupported scheme"),
    ({"dvc_remote": " "}, "DVC remote is empty"),
]


@pytest.mark.parametrize(("answers", "message"), BAD_ANSWERS, ids=lambda v: str(v)[:40])
def test_bad_answer_is_refused_before_anything_is_written(tmp_path, answers, message):
    dst = tmp_path / "project"
    with pytest.raises(ValueError, match="Validation error") as refused:
        render(dst, **answers)
    assert message in str(refused.value)
    assert not dst.exists() or not any(dst.iterdir())


@pytest.mark.parametrize(
    "answers",
    [
        {"python_version": "3.13"},
        {"github_owner": "a-b-c", "github_repo": "my.repo_2"},
        {"mlflow_tracking_uri": "http://mlflow.internal:5000"},
        {"mlflow_tracking_uri": "postgresql+psycopg2://user@db/mlflow"},
        {"dvc_remote": "s3://bucket/path"},
        {"data_source": "csv", "csv_location": "https://example.com/train.csv", "target_column": "churned"},
    ],
    ids=lambda v: str(v)[:40],
)
def test_good_answers_are_accepted(tmp_path, answers):
    assert (render(tmp_path / "project", **answers) / "params.yaml").exists()

"""The cookiecutter entry: `cookiecutter <template>` gives the same project as `copier copy` for the
same answers, byte for byte and with the Copier answers file, from the one template source
(cookiecutter.json is written from copier.yml; hooks/post_gen_project.py hands the answers to
Copier)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, files_of, render
from .test_update import commit_everything, working_tree_repo

ANSWERS = {  # per profile: literal answers, a changed name (derived slug and package), choices
    "mlops": {
        "project_name": "Churn Model",
        "ml_task": "regression",
        "github_owner": "acme",
        "license": "Apache-2.0",
    },
    "llmops": {
        "project_name": "Support Bot",
        "profile": "llmops",
        "base_model": "tiny",
        "llm_parts": ["retrieval", "guardrails"],
        "llm_specialised": True,
    },
}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """This working tree as one commit: both entries record the same `_commit`."""
    repo = working_tree_repo(tmp_path_factory.mktemp("template") / "template")
    commit_everything(repo, "the template")
    return repo


def cookiecutter(output: Path, answers: dict, template: Path = REPO_ROOT) -> Path:
    from cookiecutter.main import cookiecutter as run

    context = {key: ", ".join(v) if isinstance(v, list) else v for key, v in answers.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        made = run(
            str(template),
            no_input=True,
            output_dir=str(output),
            extra_context={**context, "_copier_vcs_ref": "HEAD"},
        )
    return Path(made)


def test_cookiecutter_json_is_written_from_copier_yml():
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts/cookiecutter_entry.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_a_stale_cookiecutter_json_fails_the_check(tmp_path, monkeypatch):
    """A question added to copier.yml without rewriting cookiecutter.json is caught."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import cookiecutter_entry

    stale = tmp_path / "cookiecutter.json"
    stale.write_text(
        (REPO_ROOT / "cookiecutter.json").read_text().replace('  "team_ops": ', '  "team_opps": ')
    )
    monkeypatch.setattr(cookiecutter_entry, "TARGET", stale)
    assert cookiecutter_entry.main(["--check"]) == 1
    assert cookiecutter_entry.main([]) == 0 and cookiecutter_entry.main(["--check"]) == 0  # rewritten


@pytest.mark.parametrize("profile", list(ANSWERS))
def test_both_entries_make_the_same_project(tmp_path, template, profile):
    answers = ANSWERS[profile]
    by_copier = render(tmp_path / "copier" / "project", src=template, vcs_ref="HEAD", **answers)
    by_cookiecutter = cookiecutter(tmp_path / "cookiecutter", answers, template)

    assert by_cookiecutter.name == by_copier.parent.joinpath(by_cookiecutter.name).name  # the slug
    files = files_of(by_copier)
    assert files == files_of(by_cookiecutter)
    assert ".copier-answers.yml" in files and ".cookiecutter-entry" not in files
    different = [
        f for f in sorted(files) if (by_copier / f).read_bytes() != (by_cookiecutter / f).read_bytes()
    ]
    assert different == []


def test_a_bad_answer_is_refused_by_copiers_validator(tmp_path):
    from cookiecutter.exceptions import FailedHookException

    with pytest.raises(FailedHookException):
        cookiecutter(tmp_path, {"github_owner": "not an owner!"})
    assert not any(tmp_path.iterdir())  # nothing left behind

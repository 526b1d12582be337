"""`copier update` brings template changes into a project and keeps the user's edits."""

from __future__ import annotations

import shutil
import subprocess
import warnings

import pytest
import yaml

from .conftest import REPO

IGNORED = shutil.ignore_patterns(
    ".git", ".venv", ".tools", ".demo", "__pycache__", ".pytest_cache", ".ruff_cache"
)


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)


@pytest.fixture
def identity(monkeypatch):
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")


@pytest.fixture
def template_repo(tmp_path, identity):
    """A git copy of the template with two releases: v1 (as it is) and v2 (one change)."""
    repo = tmp_path / "template"
    shutil.copytree(REPO, repo, ignore=IGNORED)
    git(repo, "init", "--quiet")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "v1")
    git(repo, "tag", "v1")
    readme = repo / "template/infra/README.md"
    readme.write_text(readme.read_text() + "\nNew in v2: where the tracking server goes.\n")
    git(repo, "commit", "--quiet", "-am", "v2")
    git(repo, "tag", "v2")
    return repo


def test_update_keeps_user_edits_and_brings_template_changes(tmp_path, template_repo):
    import copier

    project = tmp_path / "project"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(str(template_repo), str(project), defaults=True, vcs_ref="v1", quiet=True)
    git(project, "init", "--quiet")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "generated")

    params_file = project / "params.yaml"
    params_file.write_text(params_file.read_text().replace("    C: 1.0", "    C: 0.5"))
    (project / "notebooks").mkdir()
    (project / "notebooks/explore.py").write_text("print('mine')\n")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "user edits")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_update(
            str(project), defaults=True, overwrite=True, conflict="inline", vcs_ref="v2", quiet=True
        )

    assert "New in v2" in (project / "infra/README.md").read_text()
    assert yaml.safe_load(params_file.read_text())["train"]["hyperparameters"]["C"] == 0.5
    assert (project / "notebooks/explore.py").read_text() == "print('mine')\n"
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v2"
    conflicts = subprocess.run(["git", "grep", "-l", "<<<<<<<"], cwd=project, capture_output=True, text=True)
    assert conflicts.stdout == ""

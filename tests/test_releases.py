"""Releases of the template: CHANGELOG.md sections per PEP 440 version with what a user must do,
the release workflow publishing them (run here against a fake `gh`), and the migrations of
generated projects documented in the release that makes them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from packaging.version import Version

from .conftest import REPO_ROOT, run
from .test_workflows import calls, check_schema, fake_gh, zizmor

NOTES = REPO_ROOT / "scripts/release_notes.py"
sys.path.insert(0, str(NOTES.parent))
from release_notes import sections  # noqa: E402

RELEASES = {v: body for v, (date, body) in sections((REPO_ROOT / "CHANGELOG.md").read_text()).items() if date}


def notes(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(NOTES), *args], capture_output=True, text=True)


def test_every_release_is_pep_440_newest_first_and_says_what_to_do():
    versions = [Version(v) for v in RELEASES]
    assert len(versions) >= 3 and versions == sorted(versions, reverse=True)
    assert all(
        str(v) == raw for v, raw in zip(versions, RELEASES, strict=True)
    )  # canonical: the tag as written
    for version, body in RELEASES.items():
        assert "### Added" in body and "### What you must do" in body, version


def test_release_notes_are_the_versions_section_and_refuse_what_is_not_a_release():
    newest = next(iter(RELEASES))
    done = notes(newest)
    assert done.returncode == 0 and done.stdout == RELEASES[newest]
    assert "## [" not in done.stdout  # one section, without the next one's heading
    bad = notes("v1.0")
    assert bad.returncode == 2 and "PEP 440" in bad.stderr
    missing = notes("99.0.0")
    assert missing.returncode == 2 and "## [99.0.0] - YYYY-MM-DD" in missing.stderr
    unreleased = notes("Unreleased")
    assert unreleased.returncode == 2


def test_the_release_workflow_publishes_the_notes(tmp_path):
    workflow = REPO_ROOT / ".github/workflows/release.yml"
    assert zizmor(REPO_ROOT / ".github") == []
    check_schema("vendor.github-workflows", workflow)
    steps = yaml.safe_load(workflow.read_text())["jobs"]["release"]["steps"]
    newest = next(iter(RELEASES))
    env = {**os.environ, **fake_gh(tmp_path / "bin", {}), "RUNNER_TEMP": str(tmp_path), "TAG": newest}
    for step in steps[1:]:
        run(["bash", "-e", "-c", step["run"]], REPO_ROOT, env)
    [call] = calls(env)
    argv = call["argv"]
    assert argv[:3] == ["release", "create", newest] and "--verify-tag" in argv
    assert Path(argv[argv.index("--notes-file") + 1]).read_text() == RELEASES[newest]


def test_each_migration_is_a_release_whose_notes_give_its_manual_equivalent():
    text = (REPO_ROOT / "template/infra/template/migrations.yaml.jinja").read_text()
    migrations = yaml.safe_load(text.replace("{{ package_name }}", "pkg"))
    newest = Version(next(iter(RELEASES)))
    for entry in migrations:
        version = str(entry["version"])
        assert Version(version) <= newest and version in RELEASES, version
        for old, new in (entry.get("renamed") or {}).items():
            tail = lambda path: re.sub(r"^src/pkg/", "", path)  # noqa: E731
            assert tail(old) in RELEASES[version] and tail(new) in RELEASES[version], (version, old)
        for path in entry.get("removed") or []:
            assert path in RELEASES[version], (version, path)

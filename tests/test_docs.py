"""The handbook (docs/, `make docs`): it builds with MkDocs in strict mode (a broken link, anchor or
include is an error), its diagrams need no network, its questions page is copier.yml's, and every
folder, file and `make` command it names exists in a rendered project (or in this repository)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, render, write_codeowners

DOCS = REPO_ROOT / "docs"
# Written by a run, not by the template: named in the handbook, absent from a fresh project.
OUTPUTS = (
    "reports/",
    "logs/",
    "models/",
    "mlflow",
    ".site",
    "data/prepared/",
    "data/raw/",
    "data/columns.yaml",  # the first run's profile of a CSV
    "uv.lock",
    "dvc.lock",
)
PATH_LIKE = re.compile(r"^[\w.<>-]+(/[\w.<>*-]*)+/?$|^[\w-]+\.(py|yaml|yml|md|txt|json|jsonl|toml|csv|sh)$")


@pytest.fixture(scope="module")
def projects(tmp_path_factory) -> list[Path]:
    """A rendered project of each profile (every LLM part), as `make setup` leaves its files."""
    base = tmp_path_factory.mktemp("handbook")
    built = [
        render(base / "mlops"),
        render(
            base / "llmops", profile="llmops", llm_parts=["retrieval", "finetuning", "guardrails", "agent"]
        ),
    ]
    for root in built:
        write_codeowners(root)
    return built


def test_the_handbook_builds_strict_and_offline(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts/docs.sh"), "--site-dir", str(site)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "NO_MKDOCS_2_WARNING": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr
    pages = {p.name for p in site.glob("*.html")}
    assert {"index.html", "lifecycle.html", "questions.html", "maturity.html", "team.html"} <= pages
    for page in site.glob("*.html"):
        html = page.read_text()
        remote = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(https?://[^"]+)"', html)
        assert not remote, (page.name, remote)  # no resource fetched from the network
    assert (site / "javascripts/mermaid.min.js").stat().st_size > 1_000_000
    assert 'class="mermaid"' in (site / "index.html").read_text()  # the lifecycle diagram


def test_a_broken_link_fails_the_build(tmp_path):
    shutil.copytree(DOCS, tmp_path / "docs", ignore=shutil.ignore_patterns("javascripts"))
    shutil.copy(REPO_ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    (tmp_path / "maturity").mkdir()
    shutil.copy(REPO_ROOT / "maturity/README.md", tmp_path / "maturity/README.md")
    index = tmp_path / "docs/index.md"
    index.write_text(index.read_text() + "\nSee [the glossary](glossary.md).\n")
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "mkdocs"),
            "build",
            "--strict",
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "glossary.md" in done.stderr


def test_the_questions_page_is_copier_ymls():
    done = subprocess.run(
        [sys.executable, "scripts/docs_questions.py", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout
    page = (DOCS / "questions.md").read_text()
    for name in ("profile", "llm_parts", "production_reviewers", "team_ops"):
        assert f"| `{name}` |" in page


def named(page: Path) -> tuple[set[str], set[str]]:
    """The paths and the `make` targets a page names in code."""
    paths, targets = set(), set()
    for span in re.findall(r"`([^`\n]+)`", page.read_text()):
        for target in re.findall(r"\bmake ([a-z][a-z0-9-]*)", span):
            targets.add(target)
        if PATH_LIKE.match(span) and not span.startswith(("http", "/v1")) and ":" not in span:
            paths.add(span)
    return paths, targets


def listed(root: Path) -> set[str]:
    """Every file and folder of ``root`` (its tracked ones for this repository), as paths."""
    if root == REPO_ROOT:
        names = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True).stdout.split()
    else:
        names = [p.relative_to(root).as_posix() for p in root.rglob("*") if ".git" not in p.parts]
    folders = {"/".join(n.split("/")[:i]) for n in names for i in range(1, n.count("/") + 1)}
    return set(names) | folders


def test_every_file_folder_and_command_the_handbook_names_exists(projects):
    """A name is a path of a rendered project or of this repository, whole or as the end of one
    (`gates.py`, `deploy.yml`: the handbook names files as their folder's README does)."""
    roots = [*projects, REPO_ROOT]
    makefiles = [(root / "Makefile").read_text() for root in roots]
    known = set().union(*(listed(root) for root in roots))
    missing = []
    for page in sorted(DOCS.glob("*.md")):
        if page.name == "questions.md":
            continue  # copier.yml's help texts, checked with the questions
        paths, targets = named(page)
        for path in sorted(paths):
            relative = path.strip("/").replace("<pkg>", "my_ml_project").replace("<package>", "my_ml_project")
            if relative.startswith(OUTPUTS) or "*" in relative or "<" in relative:
                continue  # an output of a run, a pattern, or a placeholder (a branch per release)
            if relative not in known and not any(name.endswith("/" + relative) for name in known):
                missing.append(f"{page.name}: {path}")
        for target in sorted(targets):
            if not any(re.search(rf"^{re.escape(target)}:", text, re.M) for text in makefiles):
                missing.append(f"{page.name}: make {target}")
    assert not missing, missing

"""`make update` in generated projects (``infra/template/update.py``), against template repositories
with tagged releases: the working tree is the newest release, the older ones are made from it by
the edits a real release makes (a renamed module, a changed workflow, a new question with a
default, a template file dropped, an output no longer produced).

A project is generated at an old release and its user edits everything they would (parameters,
thresholds, their own module and test, template-owned code, the renamed module, a new DVC stage,
a dependency), commits, and updates: every edit is still there, the release arrived, the conflict
is listed and the command fails until it is resolved; then the project's tests and pipeline pass.
Answers change through the update too: profile, LLM parts, tracking URI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import GIT_IDENTITY, UV, git, make_setup, run
from .test_update import commit_everything, generate, working_tree_repo

OLD, MIDDLE, NEW = "0.2.1", "0.2.2", "0.3.0"
PKG = "template/src/{{ package_name }}"
ORPHAN = "reports/summary.md"  # an output the old release wrote and the new one no longer does


def edit(file: Path, old: str, new: str) -> None:
    text = file.read_text()
    assert old in text, f"{old!r} not in {file}"
    file.write_text(text.replace(old, new, 1))


def as_older_release(repo: Path) -> None:
    """Edits that turn the newest release into what the one before plausibly was."""
    (repo / PKG / "deployment/sink.py").write_bytes((repo / PKG / "serving/log.py").read_bytes())
    (repo / PKG / "serving/log.py").unlink()  # serving/log.py was deployment/sink.py
    edit(repo / "template/.github/workflows/ci.yml.jinja", "timeout-minutes: 20", "timeout-minutes: 15")
    copier_yml = repo / "copier.yml"  # team_ops is new, with a default
    copier_yml.write_text(re.sub(r"\nteam_ops:\n(  .*\n)+", "\n", copier_yml.read_text()))
    (repo / "template/docs").mkdir()
    for name in ("model-card.md", "glossary.md"):  # template files the new release dropped
        (repo / "template/docs" / name).write_text(f"# {name}\n\nFrom the template.\n")


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> Path:
    """A template repository tagged OLD and MIDDLE (older releases) and NEW (the working tree, whose
    migrations also drop ORPHAN)."""
    repo = working_tree_repo(tmp_path_factory.mktemp("releases") / "template")
    newest = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    as_older_release(repo)
    commit_everything(repo, OLD)
    git(repo, "tag", OLD)
    # MIDDLE: only the workflow and the question are new.
    for path in (repo / "template/.github/workflows/ci.yml.jinja", repo / "copier.yml"):
        path.write_bytes(newest[path])
    commit_everything(repo, MIDDLE)
    git(repo, "tag", MIDDLE)
    shutil.rmtree(repo / "template/docs")
    (repo / PKG / "deployment/sink.py").unlink()
    for path, content in newest.items():
        path.write_bytes(content)
    edit(repo / "template/infra/template/migrations.yaml.jinja", "removed: []", f"removed: [{ORPHAN}]")
    commit_everything(repo, NEW)
    git(repo, "tag", NEW)
    return repo


def update(project: Path, *args: str) -> subprocess.CompletedProcess:
    """infra/template/update.py as `make update` runs it, without the set-up and tests after it."""
    env = {**os.environ, **GIT_IDENTITY}
    return subprocess.run(
        [sys.executable, "infra/template/update.py", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )


def data(*pairs: str) -> list[str]:
    """`make update DATA="a=1 b=2"` as update.py's arguments."""
    return [arg for pair in pairs for arg in ("--data", pair)]


def answers(project: Path) -> dict:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def take_the_templates_side(file: Path) -> None:
    """Resolve inline conflicts as a user who keeps the template's version does."""
    file.write_text(
        re.sub(r"<<<<<<< [^\n]*\n.*?\n=======\n(.*?)>>>>>>> [^\n]*\n", r"\1", file.read_text(), flags=re.S)
    )


def make_user_edits(project: Path) -> dict[Path, str]:
    """Every kind of edit a user makes; returns the text each edited file must still contain."""
    pkg = project / "src/my_ml_project"
    edit(project / "params.yaml", "    C: 1.0\n", "    C: 0.5\n")
    edit(project / "business/kpis.yaml", "accuracy: {min: 0.90}", "accuracy: {min: 0.93}")
    (pkg / "features.py").write_text(
        '"""Our features."""\n\n\ndef ratio(a: float, b: float) -> float:\n    return a / b\n'
    )
    (project / "tests/test_features.py").write_text(
        "from my_ml_project.features import ratio\n\n\ndef test_ratio():\n    assert ratio(1, 2) == 0.5\n"
    )
    edit(
        pkg / "deployment/sink.py",
        '"""',
        '"""Ours: log retention is 90 days in production.\n\n',
    )
    edit(pkg / "training/estimators.py", '"""', '"""Ours: we reviewed these estimators in March.\n\n')
    edit(
        project / ".github/workflows/ci.yml", "timeout-minutes: 15", "timeout-minutes: 25"
    )  # the release changes it too
    with (project / "dvc.yaml").open("a") as stages:
        stages.write(
            "  summary:\n"
            "    cmd: python -c \"import json; print(json.load(open('reports/metrics.json')))\" > reports/summary.txt\n"
            "    deps: [reports/metrics.json]\n"
            "    outs: [reports/summary.txt]\n"
        )
    edit(
        project / "pyproject.toml", '    "pyyaml>=6",\n', '    "pyyaml>=6",\n    "requests>=2.31",  # ours\n'
    )
    edit(project / "docs/model-card.md", "From the template.", "Our model card: owners, limits, data.")
    (project / ORPHAN).parent.mkdir(exist_ok=True)
    (project / ORPHAN).write_text("what the old release's pipeline wrote\n")
    with (project / ".gitignore").open("a") as ignore:
        ignore.write(f"/{ORPHAN}\n")
    return {
        project / "params.yaml": "    C: 0.5\n",
        project / "business/kpis.yaml": "accuracy: {min: 0.93}",
        pkg / "features.py": "def ratio(",
        project / "tests/test_features.py": "def test_ratio",
        pkg / "serving/log.py": "Ours: log retention is 90 days in production.",  # merged into the new name
        pkg / "training/estimators.py": "Ours: we reviewed these estimators in March.",
        project / "dvc.yaml": "  summary:\n",
        project / "pyproject.toml": '"requests>=2.31",  # ours',
        project / "docs/model-card.md": "Our model card",
    }


def test_update_keeps_every_edit_lists_the_conflict_and_brings_the_release(tmp_path, releases):
    project = generate(tmp_path / "project", releases, OLD)
    kept = make_user_edits(project)
    commit_everything(project, "our work")

    done = update(project)

    assert done.returncode == 1, done.stdout + done.stderr  # a conflict remains
    assert f"Template update: {OLD} -> {NEW}" in done.stdout
    assert (
        "1 conflicts to resolve" in done.stdout
        and "`.github/workflows/ci.yml`: keep what you need" in done.stdout
    )
    for file, text in kept.items():
        assert text in file.read_text(), file
    # The release arrived: the renamed module, the workflow (where the user left it), the new
    # question's default, the dropped files, the orphaned output.
    pkg = project / "src/my_ml_project"
    assert not (pkg / "deployment/sink.py").exists()
    assert (pkg / "serving/log.py").read_text().count('"""') >= 2
    assert (
        "merged your edits of `src/my_ml_project/deployment/sink.py`" in done.stdout
        and "cleanly" in done.stdout
    )
    assert answers(project)["team_ops"] == "@my-org" and answers(project)["_commit"] == NEW
    assert not (project / "docs/glossary.md").exists()
    assert "kept `docs/model-card.md`" in done.stdout
    assert not (project / ORPHAN).exists() and f"removed `{ORPHAN}`" in done.stdout

    # While the conflict is there, it says so and fails; a dirty tree without one is refused.
    again = update(project)
    assert again.returncode == 1 and ".github/workflows/ci.yml: keep what you need" in again.stderr
    ci = project / ".github/workflows/ci.yml"
    take_the_templates_side(ci)
    assert "timeout-minutes: 20" in ci.read_text() and "<<<<<<<" not in ci.read_text()
    dirty = update(project)
    assert dirty.returncode == 2 and "Commit or stash your changes first" in dirty.stderr
    commit_everything(project, "template update, conflict resolved")
    finished = update(project)
    assert finished.returncode == 0 and f"Already at the template's {NEW}" in finished.stdout, finished.stderr


def test_a_rej_file_left_by_a_manual_update_is_listed(tmp_path, releases):
    project = generate(tmp_path / "project", releases, NEW)
    (project / "Makefile.rej").write_text("@@ -1 +1 @@\n-old\n+new\n")
    done = update(project)
    assert done.returncode == 1
    assert "Makefile.rej: the template's change that did not apply to Makefile" in done.stderr


def test_update_to_a_given_release_then_to_the_newest(tmp_path, releases):
    project = generate(tmp_path / "project", releases, OLD)
    middle = update(project, "--vcs-ref", MIDDLE)
    assert middle.returncode == 0, middle.stdout + middle.stderr
    assert (
        answers(project)["_commit"] == MIDDLE
        and "timeout-minutes: 20" in (project / ".github/workflows/ci.yml").read_text()
    )
    assert (project / "src/my_ml_project/deployment/sink.py").is_file()  # renamed only in NEW
    commit_everything(project, MIDDLE)
    newest = update(project)
    assert newest.returncode == 0 and answers(project)["_commit"] == NEW, newest.stdout + newest.stderr
    assert not (project / "src/my_ml_project/deployment/sink.py").exists()
    assert "merged your edits" not in newest.stdout  # nothing of the user's to carry over


@pytest.mark.slow
def test_make_update_fails_until_resolved_then_syncs_tests_and_the_pipeline_runs(
    tmp_path, releases, project_env
):
    """The whole command, as a user runs it: set up, edit, commit (the project's hooks run), then
    `make update`; after the conflict is resolved and committed, `make update` syncs the environment
    from the new pyproject.toml and runs the project's tests, and the pipeline passes with the
    user's own stage."""
    project = generate(tmp_path / "project", releases, OLD)
    make_setup(project, project_env)
    kept = make_user_edits(project)
    commit = ["git", "commit", "--quiet", "-m"]
    run(["git", "add", "--all"], project, project_env)
    run([*commit, "our work"], project, project_env)
    # The dependency the user added is not locked yet: every target says so before it runs.
    stale = run(["make", "lint"], project, project_env, ok=False)
    assert stale.returncode != 0, stale.stdout
    assert "uv.lock does not match pyproject.toml (it lacks requests>=2.31)" in stale.stderr, stale.stderr
    assert "run make setup" in stale.stderr and "Traceback" not in stale.stderr

    first = run(["make", "update"], project, project_env, ok=False)
    assert first.returncode != 0 and "1 conflicts to resolve" in first.stdout, first.stdout + first.stderr
    assert "make setup" not in first.stdout  # it stopped before syncing
    take_the_templates_side(project / ".github/workflows/ci.yml")
    run(["git", "add", "--all"], project, project_env)
    run([*commit, "template update, conflict resolved"], project, project_env)

    done = run(["make", "update"], project, project_env)
    assert f"Already at the template's {NEW}" in done.stdout and " passed" in done.stdout
    # The lock follows the updated pyproject.toml, the user's dependency included.
    assert '{ name = "requests", specifier = ">=2.31" }' in (project / "uv.lock").read_text()
    for file, text in kept.items():
        assert text in file.read_text(), file
    repro = run(["make", "repro"], project, project_env)
    assert "Running stage 'summary'" in repro.stdout and "quality gate passed" in repro.stdout


# --------------------------------------------------------------------------- template-update.yml
def update_step(project: Path) -> str:
    workflow = yaml.safe_load((project / ".github/workflows/template-update.yml").read_text())
    return next(s["run"] for s in workflow["jobs"]["update"]["steps"] if "pull request" in s.get("name", ""))


def test_the_scheduled_workflow_opens_one_pull_request_per_release(tmp_path, releases):
    """The workflow's step, run here against a fake `gh` and a bare remote, as on a runner."""
    from .test_workflows import calls, fake_gh

    project = generate(tmp_path / "project", releases, OLD)
    edit(project / ".github/workflows/ci.yml", "timeout-minutes: 15", "timeout-minutes: 25")
    commit_everything(project, "our timeout")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    git(project, "remote", "add", "origin", str(remote))
    git(project, "push", "--quiet", "origin", "main")
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    env = {**os.environ, **GIT_IDENTITY, **fake_gh(tmp_path / "bin", {})}
    env["PATH"] = f"{Path(UV).parent}{os.pathsep}{env['PATH']}"  # uv, as setup-uv leaves it
    env.update(GH_TOKEN="token-from-the-secret", GITHUB_REF_NAME="main", RUNNER_TEMP=str(runner_temp))
    script = update_step(project)

    run(["bash", "-e", "-c", script], project, env)
    assert [c["argv"][:2] for c in calls(env)] == [["auth", "setup-git"], ["pr", "create"]]
    pr = calls(env)[1]["argv"]
    assert pr[pr.index("--head") + 1] == f"template-update/{NEW}" and pr[pr.index("--base") + 1] == "main"
    body = Path(pr[pr.index("--body-file") + 1]).read_text()
    assert (
        f"Template update: {OLD} -> {NEW}" in body
        and "- `.github/workflows/ci.yml`: keep what you need" in body
    )
    pushed = git(remote, "show", f"template-update/{NEW}:.copier-answers.yml")
    assert f"_commit: {NEW}" in pushed
    assert "<<<<<<<" in git(remote, "show", f"template-update/{NEW}:.github/workflows/ci.yml")  # for review

    # Next week, main still at OLD: the branch exists, so no second pull request.
    git(project, "switch", "--quiet", "main")
    again = run(["bash", "-e", "-c", script], project, env)
    assert "exists: its pull request is open" in again.stdout and len(calls(env)) == 3  # setup-git only

    # A project on the newest release: nothing to do.
    current = generate(tmp_path / "current", releases, NEW)
    done = run(["bash", "-e", "-c", update_step(current)], current, env)
    assert "on the template's newest release" in done.stdout and len(calls(env)) == 3

    # A template that cannot be reached fails the step: never read as "up to date".
    edit(current / ".copier-answers.yml", f"_src_path: {releases}", f"_src_path: {tmp_path / 'gone'}")
    commit_everything(current, "moved template")
    lost = run(["bash", "-e", "-c", update_step(current)], current, env, ok=False)
    assert lost.returncode != 0 and "newest release" not in lost.stdout and len(calls(env)) == 3


# --------------------------------------------------------------------------- answers changed on the way
def test_switching_to_llmops_brings_the_llm_parts_and_keeps_what_the_user_chose(tmp_path, releases):
    project = generate(tmp_path / "project", releases, NEW)
    pkg = project / "src/my_ml_project"
    (pkg / "features.py").write_text('"""Our features."""\n')
    edit(pkg / "training/train.py", '"""', '"""Ours: trained nightly.\n\n')
    commit_everything(project, "our work")

    done = update(
        project, *data("profile=llmops", "base_model=tiny"), "--keep", "src/my_ml_project/deployment/*"
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Answers changed: `profile=llmops`, `base_model=tiny`" in done.stdout
    assert answers(project)["profile"] == "llmops" and answers(project)["base_model"] == "tiny"
    for arrived in ("llm/assistant.py", "chat/app.py", "guardrails/rails.py", "corpus/pii.py"):
        assert (pkg / arrived).is_file(), arrived
    assert (project / "prompts/answer.txt").is_file() and (project / "guardrails/policy.yaml").is_file()
    assert (
        "stages:" in (project / "dvc.yaml").read_text() and "  chunk:" in (project / "dvc.yaml").read_text()
    )
    # What the user wrote or chose to keep stays; the rest of the tabular profile goes.
    assert (pkg / "features.py").read_text() == '"""Our features."""\n'
    assert "Ours: trained nightly." in (pkg / "training/train.py").read_text()
    assert "kept `src/my_ml_project/training/train.py`: you had changed it" in done.stdout
    assert (
        pkg / "deployment/app.py"
    ).is_file() and "kept `src/my_ml_project/deployment/app.py` (KEEP)" in done.stdout
    assert not (pkg / "training/estimators.py").exists() and not (project / "tests/test_training.py").exists()


def test_llm_parts_removed_then_added_back(tmp_path, releases):
    project = generate(tmp_path / "project", releases, NEW, profile="llmops", base_model="tiny")
    pkg = project / "src/my_ml_project"
    policy = project / "guardrails/policy.yaml"
    policy.write_text(policy.read_text() + "# ours: reviewed by security\n")
    commit_everything(project, "our policy")

    removed = update(project, *data('llm_parts=["retrieval"]'))
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert answers(project)["llm_parts"] == ["retrieval"]
    assert not (pkg / "guardrails").exists() and not (pkg / "llm/finetune.py").exists()
    assert not (project / "guardrails/attacks.jsonl").exists()
    assert (
        "ours: reviewed by security" in policy.read_text()
        and "kept `guardrails/policy.yaml`" in removed.stdout
    )
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert "finetune" not in stages and "guardrails" not in stages and "index" in stages
    commit_everything(project, "retrieval only")

    added = update(project, *data('llm_parts=["retrieval", "guardrails"]'))
    assert answers(project)["llm_parts"] == ["retrieval", "guardrails"]
    assert (pkg / "guardrails/rails.py").is_file() and (project / "guardrails/attacks.jsonl").is_file()
    assert "guardrails" in yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    # The user's policy and the template's meet again: both kept, as a conflict to resolve.
    assert "ours: reviewed by security" in policy.read_text() and "<<<<<<<" in policy.read_text()
    assert added.returncode == 1 and "`guardrails/policy.yaml`: keep what you need" in added.stdout


def test_switching_the_tracking_server_and_the_dvc_remote(tmp_path, releases):
    project = generate(tmp_path / "project", releases, NEW)
    edit(project / "params.yaml", "    C: 1.0\n", "    C: 0.5\n")
    commit_everything(project, "tuned")

    done = update(
        project,
        *data("mlflow_tracking_uri=postgresql://ml@db.internal/mlflow", "dvc_remote=s3://acme-ml/dvc"),
    )

    assert done.returncode == 0, done.stdout + done.stderr
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["tracking"]["uri"] == "postgresql://ml@db.internal/mlflow"
    assert params["train"]["hyperparameters"]["C"] == 0.5
    pyproject = (project / "pyproject.toml").read_text()
    assert '"psycopg[binary]>=3.1"' in pyproject and '"dvc[s3]>=3.60,<4"' in pyproject
    assert "url = s3://acme-ml/dvc" in (project / ".dvc/config").read_text()

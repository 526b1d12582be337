"""GitHub side of generated projects: workflows, Dependabot, CODEOWNERS, `make github-setup`.

Every rendered workflow (per answer combination) and the template's own CI pass zizmor (offline,
pedantic persona) and GitHub's JSON schemas with zero findings; every `make` target a step calls
exists; actions are pinned by commit SHA; checkouts keep no credentials; permissions are granted
per job only.
`infra/github/setup.py` runs against a fake `gh` that records its calls. One slow test sets up a
project and runs `make validate` (passing, then failing) and `make github-setup` for real.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import yaml

from .conftest import REPO_ROOT, make_setup, render, run, write_codeowners

BIN = Path(sys.executable).parent
WORKFLOWS = ("ci.yml", "deploy.yml", "monitor.yml", "retrain.yml", "template-update.yml")
# An llmops project deploys the chat service without an image (QA in test, approval, promote); with
# retrieval (both llmops combinations below) it sweeps its retrieval settings weekly.
LLM_WORKFLOWS = (*WORKFLOWS, "rag-sweep.yml")
CI_JOB_NAMES = ["Lint and tests", "Maturity", "Data checks", "Pipeline and quality gate"]
TEAMS = {
    "team_business": "@acme/analysts",
    "team_data": "@acme/data-eng @dora",
    "team_ml": "@acme/ml",
    "team_ops": "@acme/platform",
}
COMBINATIONS = {
    "defaults": {},
    "regression-csv": {
        "ml_task": "regression",
        "data_source": "csv",
        "csv_location": "data/input.csv",
        "target_column": "label",
        "python_version": "3.12",
    },
    "sensitive-feature": {"sensitive_feature": "mean_radius"},
    "llmops": {"profile": "llmops", "team_prompts": "@acme/prompt-eng", "team_security": "@acme/security"},
    "llmops-retrieval-s3": {
        "profile": "llmops",
        "llm_parts": ["retrieval"],
        "dvc_remote": "s3://acme-ml/dvc",
    },
    "s3-remote": {"dvc_remote": "s3://acme-ml/dvc"},
    "gs-remote": {"dvc_remote": "gs://acme-ml/dvc", "ml_task": "regression"},
    "reviewers-and-teams": {
        "github_owner": "Acme",
        "github_repo": "Churn.Model",
        "production_reviewers": "alice, acme/release-leads,bob",
        **TEAMS,
    },
}
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+?)@(\S+)(.*)$", re.M)
MAKE_CALL = re.compile(r"(?:^|[;&|(]\s*|\s)make\s+([a-z][a-z0-9-]*)", re.M)


def tool(name: str) -> str:
    return shutil.which(name, path=str(BIN)) or shutil.which(name) or name


@pytest.fixture(scope="module", params=list(COMBINATIONS), ids=list(COMBINATIONS))
def rendered(request, tmp_path_factory):
    answers = COMBINATIONS[request.param]
    return answers, render(tmp_path_factory.mktemp("wf") / "project", **answers)


def llm(answers: dict) -> bool:
    return answers.get("profile") == "llmops"


def workflows(root: Path) -> dict[str, dict]:
    folder = root / ".github" / "workflows"
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(folder.glob("*.yml"))}


def steps(workflow: dict):
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def zizmor(*paths: Path) -> list[dict]:
    done = subprocess.run(
        [tool("zizmor"), "--offline", "--persona", "pedantic", "--format", "json", *map(str, paths)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0 or done.stdout.lstrip().startswith("["), done.stderr  # findings: see below
    return json.loads(done.stdout or "[]")


def check_schema(schema: str, *files: Path) -> None:
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def makefile_targets(root: Path) -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9-]*):", (root / "Makefile").read_text(), re.M))


# --------------------------------------------------------------------------------- rendered files
def test_workflow_files_rendered(rendered):
    answers, root = rendered
    assert sorted(workflows(root)) == sorted(LLM_WORKFLOWS if llm(answers) else WORKFLOWS)
    assert (root / ".github/dependabot.yml").is_file() and not (root / ".github/CODEOWNERS").exists()
    assert (root / "business/roles.yaml").is_file()  # CODEOWNERS comes from it (make setup, make roles)


def test_zizmor_finds_nothing(rendered):
    _, root = rendered
    findings = zizmor(root / ".github")
    assert findings == [], json.dumps(findings, indent=1)[:4000]


def test_zizmor_is_not_blind():
    """The same audit flags an unpinned action, a persisted checkout token and an injection."""
    bad = textwrap.dedent(
        """\
        name: bad
        on: pull_request
        permissions: {}
        jobs:
          x:
            runs-on: ubuntu-24.04
            permissions:
              contents: read
            steps:
              - uses: actions/checkout@v4
              - run: echo "${{ github.event.pull_request.title }}"
        """
    )
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"zizmor-probe-{os.getpid()}" / ".github" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bad.yml").write_text(bad)
    try:
        kinds = {finding["ident"] for finding in zizmor(folder / "bad.yml")}
    finally:
        shutil.rmtree(folder.parents[1])
    assert {"unpinned-uses", "artipacked", "template-injection"} <= kinds


def test_workflows_and_dependabot_match_githubs_schemas(rendered):
    _, root = rendered
    check_schema("vendor.github-workflows", *sorted((root / ".github/workflows").glob("*.yml")))
    check_schema("vendor.dependabot", root / ".github/dependabot.yml")


def test_every_make_target_a_step_calls_exists(rendered):
    answers, root = rendered
    targets = makefile_targets(root)
    called = set()
    for name, workflow in workflows(root).items():
        for job_id, step in steps(workflow):
            script = step.get("run", "")
            assert "${{" not in script, f"{name}/{job_id}: expression inside run: {script!r}"
            assert "python" not in script, f"{name}/{job_id}: inline Python instead of a make target"
            called |= set(MAKE_CALL.findall(script))
    delivery = {"qa", "promote", "drift", "retrain"} | (set() if llm(answers) else {"image"})
    assert called >= {"test", "validate", "repro", "gate"} | delivery
    assert called <= targets, f"steps call make targets the Makefile lacks: {called - targets}"


def test_make_target_check_catches_a_missing_target():
    assert MAKE_CALL.findall("make repro\nmake gate BASE=x && make nothing-such") == [
        "repro",
        "gate",
        "nothing-such",
    ]


def pinned_actions(root: Path) -> list[tuple[str, str, str]]:
    found = []
    for path in sorted((root / ".github/workflows").glob("*.yml")):
        found += [(m[0], m[1], m[2].strip()) for m in USES.findall(path.read_text())]
    return found


def assert_pinned(root: Path) -> None:
    found = pinned_actions(root)
    assert found
    shas: dict[str, set[str]] = {}
    for action, ref, comment in found:
        assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{action}@{ref} is not pinned to a commit SHA"
        assert re.fullmatch(r"# v\d+\.\d+\.\d+", comment), f"{action}@{ref} lacks its `# vX.Y.Z` comment"
        shas.setdefault(action, set()).add(f"{ref} {comment}")
    assert all(len(refs) == 1 for refs in shas.values()), f"one action, several pins: {shas}"


def assert_least_privilege(root: Path) -> None:
    for name, workflow in workflows(root).items():
        assert workflow["permissions"] in ({}, {"contents": "read"}), f"{name}: workflow-level permissions"
        for job_id, job in workflow["jobs"].items():
            assert "permissions" in job, f"{name}/{job_id}: no job-level permissions"
        for job_id, step in steps(workflow):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, f"{name}/{job_id}"


def test_actions_pinned_by_sha_with_version_comment(rendered):
    _, root = rendered
    assert_pinned(root)


def test_least_privilege_and_no_persisted_credentials(rendered):
    answers, root = rendered
    assert_least_privilege(root)
    write = {
        (name, job_id, scope)
        for name, workflow in workflows(root).items()
        for job_id, job in workflow["jobs"].items()
        for scope, level in job["permissions"].items()
        if level == "write"
    }
    oidc = {(name, job_id, "id-token") for name, job_id in jobs_that_pull(root)} if cloud(answers) else set()
    assert (
        write
        == {
            ("monitor.yml", "retrain", "actions"),
            ("retrain.yml", "retrain", "contents"),
            ("retrain.yml", "retrain", "pull-requests"),
            ("template-update.yml", "update", "contents"),
            ("template-update.yml", "update", "pull-requests"),
        }
        | (
            {("rag-sweep.yml", "sweep", "contents"), ("rag-sweep.yml", "sweep", "pull-requests")}
            if llm(answers)
            else {
                ("deploy.yml", "build", "packages"),
                ("deploy.yml", "staging", "packages"),
                ("deploy.yml", "production", "packages"),
            }
        )
        | oidc
    )


def remote_scheme(answers: dict) -> str:
    """s3, gs, ... for a bucket as dvc_remote answer; empty for the default local folder."""
    scheme, separator, _ = answers.get("dvc_remote", "").partition("://")
    return scheme if separator else ""


def cloud(answers: dict) -> str:
    """The cloud whose OIDC login the workflows carry, from the dvc_remote answer."""
    return {"s3": "aws", "gs": "gcp"}.get(remote_scheme(answers), "")


def jobs_that_pull(root: Path) -> list[tuple[str, str]]:
    return [
        (name, job_id)
        for name, workflow in workflows(root).items()
        for job_id, job in workflow["jobs"].items()
        if any(step.get("run") == "make pull" for step in job.get("steps", []))
    ]


def test_cloud_remotes_log_in_through_oidc_before_pulling(rendered):
    answers, root = rendered
    pulling = jobs_that_pull(root)
    assert pulling == [("ci.yml", "data"), ("ci.yml", "pipeline"), ("deploy.yml", "build")] + [
        ("monitor.yml", "drift"),
        *([("rag-sweep.yml", "sweep")] if llm(answers) else []),
        ("retrain.yml", "retrain"),
    ]
    login = {"aws": "aws-actions/configure-aws-credentials", "gcp": "google-github-actions/auth"}
    for name, job_id in pulling:
        steps = workflows(root)[name]["jobs"][job_id]["steps"]
        pull = next(i for i, step in enumerate(steps) if step.get("run") == "make pull")
        logins = [step for step in steps if step.get("uses", "").split("@")[0] in login.values()]
        if cloud(answers):
            assert logins == [steps[pull - 1]], (name, job_id)
            assert logins[0]["uses"].startswith(login[cloud(answers)] + "@")
            assert "vars.MLFLOW_TRACKING_URI != ''" in logins[0]["if"]
        else:
            assert logins == [], (name, job_id)
        if cloud(answers) == "aws":
            # One login takes the role (OIDC) or the stored keys and exports the credentials; a later
            # step that set AWS variables itself, even empty, would hide them.
            assert logins[0]["if"] == "vars.MLFLOW_TRACKING_URI != ''"
            assert logins[0]["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
            assert logins[0]["with"]["aws-access-key-id"] == "${{ secrets.AWS_ACCESS_KEY_ID }}"
            later = [key for step in steps[pull:] for key in step.get("env", {}) if key.startswith("AWS_")]
            assert later == [], (name, job_id, later)
        if cloud(answers) == "gcp":
            assert "vars.GCP_WORKLOAD_IDENTITY_PROVIDER != ''" in logins[0]["if"]
        assert steps[pull]["if"] == "vars.MLFLOW_TRACKING_URI != ''"
    scheme = remote_scheme(answers)
    dependency = next(
        d
        for d in tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
        if d.startswith("dvc")
    )
    assert dependency == (f"dvc[{scheme}]>=3.60,<4" if scheme else "dvc>=3.60,<4")


def test_ci_gates_the_pull_request_against_its_base(rendered):
    answers, root = rendered
    ci = workflows(root)["ci.yml"]
    assert [job["name"] for job in ci["jobs"].values()] == CI_JOB_NAMES
    pipeline = ci["jobs"]["pipeline"]["steps"]
    checkout = next(s for s in pipeline if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    gate = next(s for s in pipeline if "make gate" in s.get("run", ""))
    assert gate["run"] == 'make gate BASE="$BASE"' and "github.base_ref" in gate["env"]["BASE"]
    setups = [s for _, s in steps(ci) if s.get("uses", "").startswith("astral-sh/setup-uv@")]
    assert {s["with"]["python-version"] for s in setups} == {answers.get("python_version", "3.11")}
    assert all(s["with"]["enable-cache"] is True for s in setups)


def test_deploy_goes_through_test_staging_and_approved_production(rendered):
    answers, root = rendered
    deploy = workflows(root)["deploy.yml"]
    jobs = deploy["jobs"]
    owner = answers.get("github_owner", "my-org")
    repo = answers.get("github_repo", "my-ml-project")
    if llm(answers):  # no image: the pipeline's application, served and QA'd on the runner
        assert "IMAGE" not in deploy["env"] and not any(
            "docker" in s.get("run", "") for job in jobs.values() for s in job["steps"]
        )
    else:
        assert deploy["env"]["IMAGE"] == f"ghcr.io/{owner}/{repo}".lower()
    assert [jobs[j].get("environment") for j in ("build", "test", "staging", "production")] == [
        None,
        "test",
        "staging",
        "production",
    ]
    assert [jobs[j].get("needs") for j in ("test", "staging", "production")] == ["build", "test", "staging"]
    assert deploy["concurrency"]["cancel-in-progress"] is False
    assert jobs["production"]["concurrency"] == {"group": "production", "cancel-in-progress": False}
    assert jobs["production"]["if"] == "github.ref == 'refs/heads/main'"
    runs = {job: [s.get("run", "") for s in jobs[job]["steps"]] for job in jobs}
    assert "make repro" in runs["build"]
    assert any(r.startswith("make image") for r in runs["build"]) != llm(answers)
    assert any("make serve" in r for r in runs["test"]) == llm(answers)
    assert "make qa URL=http://127.0.0.1:8000" in runs["test"]
    assert "make promote" in runs["production"]
    for env in ("staging", "production"):
        marked = [s for s in jobs[env]["steps"] if "replace with your target" in s.get("name", "")]
        assert len(marked) == 1 and marked[0]["name"] == f"Deploy to {env} — replace with your target"
        assert (f'--tag "$IMAGE:{env}"' in marked[0]["run"]) != llm(answers)


def test_monitor_starts_retraining_on_drift(rendered):
    answers, root = rendered
    monitor = workflows(root)["monitor.yml"]
    assert "schedule" in monitor[True] and "workflow_dispatch" in monitor[True]  # `on:` parses as True
    drift = monitor["jobs"]["drift"]
    if llm(answers):  # drift, or the online evaluation of a sample of the answers
        online = "steps.drift.outputs.retrain == 'true' || steps.online.outputs.retrain == 'true'"
        assert drift["outputs"]["retrain"] == "${{ " + online + " }}"
        assert any(s.get("id") == "online" and s["run"] == "make online-eval" for s in drift["steps"])
    else:
        assert drift["outputs"]["retrain"] == "${{ steps.drift.outputs.retrain }}"
    assert any(s.get("id") == "drift" and s["run"] == "make drift" for s in drift["steps"])
    report = "reports/drift.json" if llm(answers) else "reports/drift.html"
    assert any(report in s.get("with", {}).get("path", "") for s in drift["steps"])
    retrain = monitor["jobs"]["retrain"]
    assert "needs.drift.outputs.retrain == 'true'" in retrain["if"]
    assert retrain["steps"][-1]["run"].startswith("gh workflow run retrain.yml")
    assert retrain["steps"][-1]["env"]["GH_TOKEN"] == "${{ github.token }}"


def test_retrain_opens_a_pull_request(rendered):
    answers, root = rendered
    retrain = workflows(root)["retrain.yml"]["jobs"]["retrain"]
    scripts = [s.get("run", "") for s in retrain["steps"]]
    assert "make retrain" in scripts
    assert any("gh pr create" in s and "git push origin" in s for s in scripts)


def test_dependabot_watches_actions_python_and_the_image(rendered):
    answers, root = rendered
    config = yaml.safe_load((root / ".github/dependabot.yml").read_text())
    image = set() if llm(answers) else {"docker"}  # an llmops project has no Dockerfile yet
    assert {u["package-ecosystem"] for u in config["updates"]} == {"github-actions", "uv"} | image


def codeowners(root: Path) -> dict[str, list[str]]:
    rules = {}
    for line in write_codeowners(root).splitlines():
        if line.strip() and not line.startswith("#"):
            pattern, *owners = line.split()
            rules[pattern] = owners
    return rules


def test_codeowners_route_each_phase_to_its_team(rendered):
    answers, root = rendered
    pkg = "my_ml_project"
    team = {key: answers.get(key, "@" + answers.get("github_owner", "my-org")).split() for key in TEAMS}
    rules = codeowners(root)
    assert rules["*"] == team["team_ml"]
    assert rules["/business/"] == team["team_business"]
    data, model = ("corpus", "llm") if llm(answers) else ("data", "training")
    assert rules["/data/"] == rules[f"/src/{pkg}/{data}/"] == team["team_data"]
    assert rules[f"/src/{pkg}/{model}/"] == team["team_ml"]
    ops = ["/.github/", "/infra/", f"/src/{pkg}/ci/"]
    if llm(answers):
        assert rules["/prompts/"] == answers.get("team_prompts", "@my-org").split()
        ops.append(f"/src/{pkg}/chat/")
        assert not {"/Dockerfile", f"/src/{pkg}/deployment/"} & set(rules)
        if "guardrails" in answers.get("llm_parts", ["guardrails"]):
            security = answers.get("team_security", "@my-org").split()
            assert rules["/guardrails/"] == rules[f"/src/{pkg}/guardrails/"] == security
        else:
            assert "/guardrails/" not in rules
    else:
        ops += ["/Dockerfile", "/.dockerignore", f"/src/{pkg}/deployment/", f"/src/{pkg}/monitoring/"]
    for path in ops:
        assert rules[path] == team["team_ops"], path
    unique = list(dict.fromkeys(team["team_ml"] + team["team_ops"]))
    assert rules[f"/src/{pkg}/registry/"] == unique
    for path in ("/dvc.yaml", "/dvc.lock", "/params.yaml"):
        assert rules[path] == list(dict.fromkeys(team["team_data"] + team["team_ml"])), path


# --------------------------------------------------------------------------------- the template's CI
def test_template_ci_passes_the_same_audits():
    assert zizmor(REPO_ROOT / ".github") == []
    check_schema("vendor.github-workflows", *sorted((REPO_ROOT / ".github/workflows").glob("*.yml")))
    assert_pinned(REPO_ROOT)
    assert_least_privilege(REPO_ROOT)


def test_template_ci_matrix_runs_every_test_file_once():
    ci = yaml.safe_load((REPO_ROOT / ".github/workflows/ci.yml").read_text())
    parts = ci["jobs"]["test"]["strategy"]["matrix"]["include"]
    listed = [name for part in parts for name in part["tests"].split()]
    on_disk = sorted(f"tests/{p.name}" for p in (REPO_ROOT / "tests").glob("test_*.py"))
    assert sorted(listed) == on_disk


def test_template_and_generated_projects_pin_the_same_action_versions(rendered):
    _, root = rendered
    ours = {action: ref for action, ref, _ in pinned_actions(REPO_ROOT)}
    theirs = {action: ref for action, ref, _ in pinned_actions(root)}
    assert {a: theirs[a] for a in ours.keys() & theirs.keys()} == {
        a: ours[a] for a in ours.keys() & theirs.keys()
    }


# --------------------------------------------------------------------------------- make github-setup
FAKE_GH = """\
#!{python}
import json, os, sys
argv = sys.argv[1:]
payload = json.loads(sys.stdin.read() or "null") if "--input" in argv else None
with open(os.environ["FAKE_GH_LOG"], "a") as log:
    log.write(json.dumps({{"argv": argv, "payload": payload}}) + "\\n")
if argv[0] != "api":  # gh auth setup-git, gh pr create, gh workflow run
    sys.exit(0)
endpoint = argv[3]
ids = json.loads(os.environ.get("FAKE_GH_IDS", "{{}}"))
if argv[2] == "GET":
    if endpoint not in ids:
        sys.stderr.write("gh: Not Found (HTTP 404)\\n")
        sys.exit(1)
    answer = ids[endpoint] if isinstance(ids[endpoint], dict) else {{"id": ids[endpoint], "type": "User"}}
    print(json.dumps(answer))
else:
    print(json.dumps({{"url": "https://api.github.com/" + endpoint}}))
"""


def fake_gh(folder: Path, ids: dict[str, int]) -> dict[str, str]:
    """A `gh` on PATH that logs each call (argv and JSON payload) and answers lookups from ``ids``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "gh"
    script.write_text(FAKE_GH.format(python=sys.executable))
    script.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}", "FAKE_GH_LOG": str(folder / "calls.jsonl")}


def calls(env: dict[str, str]) -> list[dict]:
    log = Path(env["FAKE_GH_LOG"])
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def puts(env: dict[str, str]) -> dict[str, dict]:
    return {c["argv"][3]: c["payload"] for c in calls(env) if c["argv"][:3] == ["api", "--method", "PUT"]}


@pytest.fixture(scope="module")
def team_project(tmp_path_factory):
    return render(tmp_path_factory.mktemp("setup") / "project", **COMBINATIONS["reviewers-and-teams"])


def setup_script(root: Path, env: dict[str, str], *args: str, ok: bool = True):
    return run([sys.executable, "infra/github/setup.py", *args], root, {**os.environ, **env}, ok=ok)


def assert_github_set_up(env: dict[str, str], repo: str, reviewers: list[dict]) -> None:
    done = puts(env)
    assert list(done) == [
        f"repos/{repo}/environments/test",
        f"repos/{repo}/environments/staging",
        f"repos/{repo}/environments/production",
        f"repos/{repo}/branches/main/protection",
    ]
    assert done[f"repos/{repo}/environments/test"] == done[f"repos/{repo}/environments/staging"] == {}
    assert done[f"repos/{repo}/environments/production"] == {
        "reviewers": reviewers,
        "prevent_self_review": True,
        "deployment_branch_policy": {"protected_branches": True, "custom_branch_policies": False},
    }
    protection = done[f"repos/{repo}/branches/main/protection"]
    assert protection["required_status_checks"] == {"strict": True, "contexts": CI_JOB_NAMES}
    assert protection["required_pull_request_reviews"]["require_code_owner_reviews"] is True
    assert protection["allow_force_pushes"] is False and protection["restrictions"] is None


def test_github_setup_creates_environments_reviewers_and_protection(team_project, tmp_path):
    ids = {"users/alice": 101, "orgs/acme/teams/release-leads": 202, "users/bob": 303}
    env = {**fake_gh(tmp_path / "bin", ids), "FAKE_GH_IDS": json.dumps(ids)}
    done = setup_script(team_project, env)
    assert "environment production: ok (3 required reviewers)" in done.stdout
    lookups = [c["argv"][3] for c in calls(env) if c["argv"][2] == "GET"]
    assert lookups == ["users/alice", "orgs/acme/teams/release-leads", "users/bob"]
    assert_github_set_up(
        env,
        "Acme/Churn.Model",
        [{"type": "User", "id": 101}, {"type": "Team", "id": 202}, {"type": "User", "id": 303}],
    )


def test_required_checks_are_the_ci_job_names(team_project):
    source = (team_project / "infra/github/setup.py").read_text()
    names = [job["name"] for job in workflows(team_project)["ci.yml"]["jobs"].values()]
    assert f"REQUIRED_CHECKS = {json.dumps(names)}" in source


def test_github_setup_stops_on_an_unknown_team(team_project, tmp_path):
    ids = {"users/alice": 101, "users/bob": 303}  # no team acme/release-leads
    env = {**fake_gh(tmp_path / "bin", ids), "FAKE_GH_IDS": json.dumps(ids)}
    failed = setup_script(team_project, env, ok=False)
    assert failed.returncode == 1
    assert (
        "production reviewer 'acme/release-leads' is not an existing team of that organisation"
        in failed.stderr
    )
    assert "gh: Not Found (HTTP 404)" in failed.stderr and "production_reviewers" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert puts(env) == {}, "nothing may be changed before every reviewer is known"


def test_github_setup_refuses_an_organisation_as_a_user_reviewer(tmp_path):
    root = render(tmp_path / "project")  # the default reviewer is github_owner: "my-org"
    ids = {"users/my-org": {"id": 9, "type": "Organization"}}
    env = {**fake_gh(tmp_path / "bin", ids), "FAKE_GH_IDS": json.dumps(ids)}
    failed = setup_script(root, env, ok=False)
    assert failed.returncode == 1
    assert "production reviewer 'my-org' is an organisation, not a user" in failed.stderr
    assert "my-org/<team-slug>" in failed.stderr and puts(env) == {}


def test_github_setup_warns_a_single_reviewer_about_self_review(tmp_path):
    root = render(tmp_path / "project", github_owner="octocat")
    ids = {"users/octocat": 583231}
    env = {**fake_gh(tmp_path / "bin", ids), "FAKE_GH_IDS": json.dumps(ids)}
    done = setup_script(root, env)
    assert "cannot approve a deployment they started" in done.stdout and "--allow-self-review" in done.stdout
    assert_github_set_up(env, "octocat/my-ml-project", [{"type": "User", "id": 583231}])


def test_github_setup_without_gh_says_how_to_get_it(team_project, tmp_path):
    failed = setup_script(team_project, {"PATH": str(tmp_path)}, ok=False)
    assert failed.returncode == 1 and "the GitHub CLI `gh` is not installed" in failed.stderr
    assert "reviewer" not in failed.stderr  # not blamed on the answers


def test_github_setup_dry_run_changes_nothing(team_project, tmp_path):
    env = fake_gh(tmp_path / "bin", {})
    done = setup_script(team_project, env, "--dry-run", "--allow-self-review")
    assert calls(env) == []
    assert "gh api --method PUT repos/Acme/Churn.Model/environments/production --input -" in done.stdout
    assert '"prevent_self_review": false' in done.stdout and '"type": "Team"' in done.stdout


# --------------------------------------------------------------------------------- real make targets
@pytest.mark.slow
def test_make_validate_and_make_github_setup_in_a_set_up_project(tmp_path, project_env):
    root = render(tmp_path / "project")
    make_setup(root, project_env)
    passed = run(["make", "validate"], root, project_env)
    assert "Running stage 'validate'" in passed.stdout
    assert json.loads((root / "reports/validation.json").read_text())["success"] is True

    suite_file = root / "data/expectations/raw.json"
    suite = json.loads(suite_file.read_text())
    suite["expectations"].append(
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "mean_radius", "max_value": 1}}
    )
    suite_file.write_text(json.dumps(suite, indent=2))
    failed = run(["make", "validate"], root, project_env, ok=False)
    assert failed.returncode != 0
    assert "expect_column_values_to_be_between on column 'mean_radius'" in failed.stderr

    ids = {"users/my-org": 7}
    env = {**project_env, **fake_gh(tmp_path / "bin", ids), "FAKE_GH_IDS": json.dumps(ids)}
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{project_env['PATH']}"
    run(["make", "github-setup"], root, env)
    assert_github_set_up(env, "my-org/my-ml-project", [{"type": "User", "id": 7}])


# --------------------------------------------------------------------------------- the steps' shell
def step_script(root: Path, workflow: str, job: str, name_part: str) -> str:
    job_steps = workflows(root)[workflow]["jobs"][job]["steps"]
    return next(s["run"] for s in job_steps if name_part in s.get("name", ""))


def test_monitor_compares_only_when_there_are_prediction_logs(team_project, tmp_path):
    script = step_script(team_project, "monitor.yml", "drift", "Fetch the production prediction logs")
    outputs = []
    for logs in (False, True):
        if logs:
            (team_project / "logs/predictions").mkdir(parents=True, exist_ok=True)
            (team_project / "logs/predictions/2026-01-01.jsonl").write_text('{"inputs": {}}\n')
        output = tmp_path / f"output-{logs}"
        output.touch()
        done = run(["bash", "-e", "-c", script], team_project, {**os.environ, "GITHUB_OUTPUT": str(output)})
        outputs.append((output.read_text(), done.stdout))
    shutil.rmtree(team_project / "logs")
    assert outputs[0][0] == "" and "No production prediction logs" in outputs[0][1]
    assert outputs[1][0] == "found=true\n"


def test_retrain_step_pushes_a_branch_and_opens_a_pull_request(team_project, tmp_path):
    script = step_script(team_project, "retrain.yml", "retrain", "Open a pull request")
    project = tmp_path / "project"
    shutil.copytree(team_project, project)
    env = {**os.environ, **fake_gh(tmp_path / "bin", {}), "GITHUB_RUN_ID": "42", "GITHUB_REF_NAME": "main"}
    env["GH_TOKEN"] = "token-from-the-secret"
    remote = tmp_path / "remote.git"
    run(["git", "init", "--quiet", "--bare", str(remote)], tmp_path, env)
    for command in (
        ["git", "init", "--quiet", "--initial-branch", "main"],
        ["git", "add", "--all"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "init"],
        ["git", "remote", "add", "origin", str(remote)],
    ):
        run(command, project, env)

    unchanged = run(["bash", "-e", "-c", script], project, env)
    assert "Nothing changed" in unchanged.stdout and calls(env) == []

    (project / "dvc.lock").write_text("schema: '2.0'\n")  # what `make retrain` changes
    run(["bash", "-e", "-c", script], project, env)
    assert [c["argv"][:2] for c in calls(env)] == [["auth", "setup-git"], ["pr", "create"]]
    pr = calls(env)[1]["argv"]
    assert pr[pr.index("--base") + 1] == "main" and pr[pr.index("--head") + 1] == "retrain/run-42"
    pushed = run(["git", "show", "--stat", "--format=%an %s", "retrain/run-42"], remote, env).stdout
    assert "github-actions[bot] Retrain on fresh data (run 42)" in pushed and "dvc.lock" in pushed

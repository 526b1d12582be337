"""The maturity assessment (maturity/, shipped in generated projects as `make maturity`): rendered
projects of both profiles, a bare repository and partial projects (a gate removed, monitoring
unscheduled, prompts written into the code) each score as they should, every level cites files
and lines, the JSON follows its schema, and a dropped level fails against the base."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, git, render, write_codeowners

PACKAGE = REPO_ROOT / "maturity" / "src"
LOCK = "schema: '2.0'\nstages:\n  collect:\n    cmd: python -m my_ml_project collect\n"


def assess(root: Path, *options: str, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle_maturity", str(root), *options],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(PACKAGE), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode in ((0,) if ok else (1, 2)), done.stderr
    return done


def report(root: Path) -> dict:
    return json.loads(assess(root, "--format", "json").stdout)


def committed(root: Path, message: str = "work") -> Path:
    """``root`` committed, as a user has it after `make setup` (CODEOWNERS written from the roles)."""
    if (root / "business/roles.yaml").is_file() and not (root / ".github/CODEOWNERS").exists():
        write_codeowners(root)
    if not (root / ".git").is_dir():
        git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "--no-verify", "-m", message)
    return root


@pytest.fixture(scope="module")
def mlops(tmp_path_factory) -> Path:
    """A rendered mlops project after its first run: its dvc.lock committed."""
    root = render(tmp_path_factory.mktemp("maturity") / "mlops")
    (root / "dvc.lock").write_text(LOCK)
    return committed(root)


@pytest.fixture(scope="module")
def llmops(tmp_path_factory) -> Path:
    root = render(
        tmp_path_factory.mktemp("maturity") / "llmops",
        profile="llmops",
        llm_parts=["retrieval", "finetuning", "guardrails", "agent"],
    )
    (root / "dvc.lock").write_text(LOCK)
    return committed(root)


def test_the_shipped_copy_is_the_package_itself(mlops):
    """Generated projects carry the package's own files (Jinja includes), so they can hold no
    Jinja syntax of their own."""
    shipped = mlops / "src/my_ml_project/ci/maturity"
    for source in (PACKAGE / "lifecycle_maturity").iterdir():
        if source.suffix in (".py", ".json"):
            assert not re.search(r"\{\{|\{%|\{#", source.read_text()), source.name
            assert (shipped / source.name).read_text() == source.read_text(), source.name


def test_a_fresh_project_of_either_profile_reaches_the_top_mlops_level_citing_lines(mlops, llmops):
    for root in (mlops, llmops):
        found = report(root)
        assert found["mlops"]["microsoft"] == 4 and found["mlops"]["google"] == 2, found["mlops"]
        for name in ("pipeline", "tracking", "gate", "monitoring", "retraining", "protected_production"):
            cites = found["evidence"][name]["cites"]
            assert cites and all(re.match(r"^[^:]+:\d+$", c) for c in cites), (name, cites)
            file, line = cites[0].rsplit(":", 1)
            assert (root / file).is_file() and int(line) >= 1
    tabular = report(mlops)["llmops"]
    assert not tabular["applicable"] and all(d["level"] is None for d in tabular["dimensions"].values())
    dimensions = report(llmops)["llmops"]["dimensions"]
    assert {name: d["level"] for name, d in dimensions.items()} == dict.fromkeys(dimensions, 2), dimensions


@pytest.mark.parametrize(
    "parts",
    [["retrieval"], ["finetuning"], ["guardrails"], ["agent"], ["retrieval", "guardrails"], []],
    ids=lambda parts: "+".join(parts) or "no-parts",
)
def test_each_choice_of_llm_parts_scores_its_dimensions(tmp_path, parts):
    """What the parts add shows in the dimensions they realise: retrieval the RAG pipeline,
    guardrails the rails; the rest is the core every llmops project has."""
    root = render(tmp_path / "project", profile="llmops", llm_parts=parts)
    (root / "dvc.lock").write_text(LOCK)
    found = report(committed(root))
    levels = {name: d["level"] for name, d in found["llmops"]["dimensions"].items()}
    assert found["mlops"]["microsoft"] == 4, found["mlops"]
    assert levels["rag_pipeline"] == (2 if "retrieval" in parts else None)
    assert levels["guardrails"] == (2 if "guardrails" in parts else 0)
    assert levels["prompt_management"] == levels["evaluation"] == levels["cost_management"] == 2, levels
    assert levels["governance"] == 2, levels


def test_the_json_follows_its_schema_and_the_table_and_markdown_name_the_levels(llmops):
    import jsonschema

    schema = json.loads((PACKAGE / "lifecycle_maturity/schema.json").read_text())
    jsonschema.validate(report(llmops), schema)
    table = assess(llmops).stdout
    assert "MLOps: Microsoft level 4" in table and re.search(r"guardrails\s+2\s+\S+:\d+", table)
    markdown = assess(llmops, "--format", "markdown").stdout
    assert markdown.startswith("## Maturity of llmops") and "| prompt_management | 2 |" in markdown


def test_a_bare_repository_with_one_script_is_level_zero(tmp_path):
    (tmp_path / "train.py").write_text(
        "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
        "frame = pd.read_csv('data.csv')\nLogisticRegression().fit(frame.drop(columns='y'), frame['y'])\n"
    )
    found = report(committed(tmp_path))
    assert found["mlops"]["microsoft"] == 0 and found["mlops"]["google"] == 0
    installed = subprocess.run(  # the package on its own, as a tool (uvx), on any repository
        [str(Path(sys.executable).parent / "uv"), "tool", "run", "--from", str(REPO_ROOT / "maturity")]
        + ["lifecycle-maturity", str(tmp_path), "--format", "json"],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr
    assert json.loads(installed.stdout)["mlops"] == found["mlops"]
    assert found["mlops"]["missing"] == ["ci_tests"] and "ci.yml" in found["mlops"]["next"][0]
    assert not found["llmops"]["applicable"]


def test_partial_projects_score_lower_and_the_drop_fails_against_the_base(tmp_path):
    """A project whose pull requests no longer run the gate, then whose monitoring is no longer
    scheduled: each costs its level, named with its next step; `--against` the commit before
    fails, and against the same commit passes."""
    root = render(tmp_path / "partial")
    (root / "dvc.lock").write_text(LOCK)
    committed(root, "first run")
    ci = root / ".github/workflows/ci.yml"
    ci.write_text(ci.read_text().split("\n  pipeline:\n")[0] + "\n")  # the pipeline and gate job removed
    committed(root, "no gate")
    found = report(root)
    assert found["mlops"]["microsoft"] == 2 and "gate" in found["mlops"]["missing"], found["mlops"]
    dropped = assess(root, "--against", "HEAD~1", ok=False)
    assert dropped.returncode == 1 and "maturity dropped: MLOps level 4 -> 2" in dropped.stderr
    assert assess(root, "--against", "HEAD").returncode == 0
    monitor = root / ".github/workflows/monitor.yml"
    monitor.write_text(re.sub(r"  schedule:\n    - cron: .*\n", "", monitor.read_text()))
    git(root, "checkout", "HEAD~1", "--", ".github/workflows/ci.yml")
    found = report(committed(root, "monitoring by hand only"))
    assert found["mlops"]["microsoft"] == 3 and found["mlops"]["missing"] == ["monitoring"], found["mlops"]


@pytest.mark.parametrize(
    ("removed", "dimension"),
    [
        (["{pkg}/chat/variants.py", "{pkg}/monitoring/experiment.py"], "prompt_management"),  # A/B
        (["{pkg}/chat/cache.py", "{pkg}/chat/routing.py"], "cost_management"),  # cache and routing
        ([".github/workflows/rag-sweep.yml"], "rag_pipeline"),  # the scheduled retrieval sweep
        (["{pkg}/governance/trail.py"], "governance"),  # the hash-chained audit trail
        (["guardrails/attacks.jsonl"], "guardrails"),  # the gated attack set
        ([".github/workflows/monitor.yml"], "evaluation"),  # evaluation continued in production
    ],
    ids=["ab", "cost", "rag", "audit", "attacks", "online"],
)
def test_each_level_two_capability_removed_costs_its_dimension(tmp_path, removed, dimension):
    """LLMOps level 2 as the framework defines it (4.4.2), each of the six dimensions: prompt CI/CD
    with A/B, continuous RAG optimisation, guardrails gated on attacks, evaluation continued in
    production, cost optimised by caching or routing, a full audit trail; without what does it,
    level 1."""
    root = render(tmp_path / "project", profile="llmops")
    (root / "dvc.lock").write_text(LOCK)
    assert report(committed(root))["llmops"]["dimensions"][dimension]["level"] == 2
    for name in removed:
        (root / name.format(pkg="src/my_ml_project")).unlink()
    found = report(committed(root, "without it"))["llmops"]["dimensions"][dimension]
    assert found["level"] == 1 and found["next"], found


def test_prompts_written_into_the_code_are_level_zero_and_cited(tmp_path):
    root = render(tmp_path / "inlined", profile="llmops", llm_parts=["retrieval"])
    for file in (root / "prompts").iterdir():
        file.unlink()
    (root / "src/my_ml_project/llm/inline.py").write_text(
        'PROMPT = "You are a helpful assistant. Answer from the context: {context}"\n'
    )
    dimensions = report(committed(root))["llmops"]["dimensions"]
    prompts = dimensions["prompt_management"]
    assert prompts["level"] == 0 and prompts["evidence"] == ["src/my_ml_project/llm/inline.py:1"]
    assert "prompts/" in prompts["next"][0]
    assert dimensions["guardrails"]["level"] == 0  # the part was not chosen


def test_make_maturity_is_a_ci_job_and_a_command_of_the_project(mlops):
    import yaml

    ci = yaml.safe_load((mlops / ".github/workflows/ci.yml").read_text())
    runs = [step.get("run", "") for step in ci["jobs"]["maturity"]["steps"]]
    assert 'make maturity BASE="$BASE" FORMAT=markdown >> "$GITHUB_STEP_SUMMARY"' in runs
    assert 'make cost >> "$GITHUB_STEP_SUMMARY"' in runs  # the team's cost beside it
    assert "maturity" in (mlops / "Makefile").read_text()
    commands = (mlops / "src/my_ml_project/ci/__init__.py").read_text()
    assert '"maturity": ("maturity.cli"' in commands

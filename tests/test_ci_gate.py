"""The CI quality gate (`make gate`): business thresholds AND no regression against the base branch.

A real project, a real git history and `dvc metrics diff`: a pull request whose model is worse
than main's fails, one that is as good passes, and the verdict lands in the job summary.
"""

from __future__ import annotations

import pytest

from .conftest import run


@pytest.fixture(scope="module")
def project(default_built, project_env):
    assert run(["git", "branch", "--show-current"], default_built, project_env).stdout.strip() == "main"
    return default_built


def gate(root, env, summary, base="main", ok=True):
    return run(["make", "gate", f"BASE={base}"], root, {**env, "GITHUB_STEP_SUMMARY": str(summary)}, ok=ok)


def test_an_unchanged_model_passes_and_writes_the_summary(project, project_env, tmp_path):
    summary = tmp_path / "summary.md"
    gate(project, project_env, summary)
    table = summary.read_text()
    assert "| roc_auc | >= 0.95; beats baseline 0.5 by 0.05 |" in table and "FAIL" not in table
    assert table.count("| pass |") == 3


def test_an_unknown_base_ref_fails_with_a_hint(project, project_env, tmp_path):
    failed = gate(project, project_env, tmp_path / "s.md", base="origin/no-such-branch", ok=False)
    assert failed.returncode != 0 and "fetch-depth: 0" in failed.stderr


@pytest.mark.parametrize(
    ("typo", "message"),
    [
        (("primary_metric: roc_auc", "primary_metric: roc_acu"), "primary_metric: 'roc_acu' is not computed"),
        (("  f1: {min:", "  f_1: {min:"), "thresholds.f_1: 'f_1' is not computed"),
    ],
)
def test_a_metric_name_typo_in_kpis_fails_naming_the_key(project, project_env, tmp_path, typo, message):
    """Not a traceback (the primary metric has no baseline) nor a row that fails for no stated reason."""
    kpis = project / "business/kpis.yaml"
    original = kpis.read_text()
    assert typo[0] in original
    try:
        kpis.write_text(original.replace(typo[0], typo[1]))
        failed = gate(project, project_env, tmp_path / "s.md", ok=False)
    finally:
        kpis.write_text(original)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert f"business/kpis.yaml: {message} for this model; use one of accuracy," in failed.stderr


# Last: it leaves the weaker model's outputs in the working tree (no test after it needs main's).
def test_a_worse_model_than_main_fails_even_above_the_thresholds(project, project_env, tmp_path):
    run(["git", "switch", "--quiet", "-c", "weaker-model"], project, project_env)
    params = project / "params.yaml"
    try:
        params.write_text(params.read_text().replace("    C: 1.0\n", "    C: 0.01\n"))
        run(["make", "repro"], project, project_env)  # the pipeline's own gate still passes
        summary = tmp_path / "summary.md"
        failed = gate(project, project_env, summary, ok=False)
        assert failed.returncode != 0
        assert "fail the gate against main" in failed.stderr
        table = summary.read_text()
        assert "worse than base" in table and "misses threshold" not in table
    finally:
        run(["git", "checkout", "--quiet", "--", "."], project, project_env)
        run(["git", "switch", "--quiet", "main"], project, project_env)

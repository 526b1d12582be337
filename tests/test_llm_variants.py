"""llmops projects with other answers than the defaults, each built and run end to end offline on
the `tiny` base model: the Qdrant store in local mode, and a project that fine-tunes without
retrieval (its context is the answer's source document). Each builds its own project, in the llmops
environment test_llmops.py uses (the two modules run on one test worker: tests/conftest.py)."""

from __future__ import annotations

import json

import pytest
import yaml

from .conftest import built_project, run


@pytest.mark.slow
def test_the_qdrant_store_in_local_mode_serves_the_same_pipeline(tmp_path, llm_env):
    """Qdrant's client in local mode (files under paths.index), the same API as a Qdrant server."""
    root = built_project(
        tmp_path / "qdrant-project",
        llm_env,
        profile="llmops",
        base_model="tiny",
        vector_store="qdrant",
        llm_parts=["retrieval"],
    )
    assert (root / "models/index/qdrant").is_dir() and not (root / "models/index/vectors.npy").exists()
    gate = json.loads((root / "reports/gate.json").read_text())
    assert gate["passed"], gate
    assert json.loads((root / "reports/metrics.json").read_text())["hit_at_k"] >= 0.8


@pytest.mark.slow
def test_a_project_without_retrieval_fine_tunes_and_passes_the_gate(tmp_path, llm_env):
    """Fine-tuning and the agent's tools with no index: the document search reads the documents."""
    root = built_project(
        tmp_path / "finetuning-only",
        llm_env,
        profile="llmops",
        base_model="tiny",
        llm_parts=["finetuning", "agent"],
    )
    assert not (root / "models/index").exists() and (root / "models/adapter/adapter_config.json").is_file()
    gate = json.loads((root / "reports/gate.json").read_text())
    assert gate["passed"], gate
    metrics = json.loads((root / "reports/metrics.json").read_text())
    assert "hit_at_k" not in metrics and {"rouge_l", "bleu", "faithfulness"} <= set(metrics)
    margin = yaml.safe_load((root / "params.yaml").read_text())["model"]["tiny"]["kpis"]["baseline_margin"]
    assert metrics["answer_perplexity"] <= metrics["baseline"]["answer_perplexity"] - margin, metrics
    run(["make", "test"], root, llm_env)  # the generated tests of a project without retrieval

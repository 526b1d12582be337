"""Existing LLM selection: the base model, and its tokenizer, which chunking counts tokens with.

``model.base`` in ``params.yaml``:

- a Hugging Face model id: its ``tokenizer.json`` is fetched once, then read from the Hugging Face
  cache (``HF_HUB_OFFLINE=1`` works after that); the weights are loaded by id where they are needed;
- a local folder holding a model saved by transformers (``tokenizer.json``, ``config.json``, weights);
- ``tiny``: a byte-level BPE tokenizer trained here on the project's own documents and pairs
  (``model.tiny.vocab`` tokens) and a Llama-architecture model with random weights
  (``model.tiny``: layers, width, seed), saved in the transformers format with no download and no
  torch: the real code path of fine-tuning and generation, in seconds, for tests and CI.

Writes ``paths.base``: the tokenizer, and ``base.json`` saying where the weights are.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .. import reports
from ..config import load_params, path, project_root
from ..errors import GateError

TOKENIZER_FILE = "tokenizer.json"
ABOUT_FILE = "base.json"
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")


def train_tiny(texts: list[str], vocab: int):
    """A byte-level BPE tokenizer trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def fetch(base: str, root: Path):
    """The tokenizer of a model id or a local folder."""
    from tokenizers import Tokenizer

    folder = root / base if base.startswith((".", "/", "~")) else None
    if folder is not None:
        file = folder.expanduser() / TOKENIZER_FILE
        if not file.is_file():
            raise GateError(f"model.base: {folder} has no {TOKENIZER_FILE}")
        return Tokenizer.from_file(str(file))
    try:
        return Tokenizer.from_pretrained(base)
    except Exception as error:  # offline without a cached copy, a typo in the id, a gated model
        raise GateError(
            f"model.base: cannot get the tokenizer of {base!r} ({type(error).__name__}: {error}); "
            "check the id, log in for a gated model, or run once with network access"
        ) from None


def tiny_model(out: Path, tokenizer, tiny: dict[str, Any]) -> int:
    """A Llama-architecture causal LM with random weights, in ``out`` as transformers saves one
    (``config.json``, ``model.safetensors``, tokenizer files); returns its number of parameters."""
    import json

    import numpy as np
    from safetensors.numpy import save_file

    vocab, width, layers = tokenizer.get_vocab_size(), int(tiny["width"]), int(tiny["layers"])
    heads = max(1, width // 16)
    ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": width,
        "intermediate_size": 2 * width,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False,
        "bos_token_id": ids["<s>"],
        "eos_token_id": ids["</s>"],
        "pad_token_id": ids["<pad>"],
        "torch_dtype": "float32",
    }
    rng = np.random.default_rng(int(tiny["seed"]))

    def normal(*shape: int):
        return rng.normal(0.0, 0.02, shape).astype(np.float32)

    ones = np.ones(width, dtype=np.float32)
    tensors = {
        "model.embed_tokens.weight": normal(vocab, width),
        "model.norm.weight": ones,
        "lm_head.weight": normal(vocab, width),
    }
    for layer in range(layers):
        prefix = f"model.layers.{layer}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            tensors[f"{prefix}self_attn.{name}.weight"] = normal(width, width)
        tensors[f"{prefix}mlp.gate_proj.weight"] = normal(2 * width, width)
        tensors[f"{prefix}mlp.up_proj.weight"] = normal(2 * width, width)
        tensors[f"{prefix}mlp.down_proj.weight"] = normal(width, 2 * width)
        tensors[f"{prefix}input_layernorm.weight"] = ones.copy()
        tensors[f"{prefix}post_attention_layernorm.weight"] = ones.copy()
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out / "generation_config.json").write_text(
        json.dumps({k: config[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")}) + "\n",
        encoding="utf-8",
    )
    return sum(int(t.size) for t in tensors.values())


def tokenizer_config(out: Path) -> None:
    """What ``AutoTokenizer.from_pretrained`` needs beside ``tokenizer.json``."""
    import json

    names = dict(zip(("unk_token", "bos_token", "eos_token", "pad_token"), SPECIAL_TOKENS, strict=True))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 2048, **names}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def source(params: dict[str, Any], root: Path | None = None) -> str:
    """Where transformers loads the base model from: ``paths.base`` (tiny), a local folder, or the id."""
    base = params["model"]["base"]
    if base == "tiny":
        return str(path(params, "base", root))
    if base.startswith((".", "/", "~")):
        return str(((root or project_root()) / base).expanduser())
    return base


def load(params: dict[str, Any], root: Path | None = None):
    """The tokenizer the ``base`` stage wrote."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path(params, "base", root) / TOKENIZER_FILE))


def token_counter(params: dict[str, Any], root: Path | None = None):
    """``count(text)``: the number of tokens of ``text`` by the base model's tokenizer (no torch)."""
    tokenizer = load(params, root)
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser
    from ..corpus.collect import read_jsonl

    parser(__doc__, "base").parse_args(argv)
    params, root = load_params(), project_root()
    model = params["model"]
    out = path(params, "base")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if model["base"] == "tiny":
        texts = [d["text"] for d in read_jsonl(path(params, "documents"))]
        texts += [f"{p['instruction']}\n{p['answer']}" for p in read_jsonl(path(params, "train_pairs"))]
        tokenizer = train_tiny(texts, int(model["tiny"]["vocab"]))
        tokenizer_config(out)
        size = tiny_model(out, tokenizer, model["tiny"])
        origin = f"tiny ({size:,} random parameters; tokenizer trained on {len(texts)} texts)"
    else:
        tokenizer = fetch(model["base"], root)
        origin = model["base"]
    tokenizer.save(str(out / TOKENIZER_FILE))
    weights = "this folder" if model["base"] == "tiny" else model["base"]
    reports.write_json(out / ABOUT_FILE, {"base": model["base"], "weights": weights})
    print(f"base model {origin}: {tokenizer.get_vocab_size()} tokens -> {out.relative_to(root)}")
    return 0

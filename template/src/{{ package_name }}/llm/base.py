"""Existing LLM selection: the base model's tokenizer, which chunking counts tokens with.

``model.base`` in ``params.yaml``: a Hugging Face model id (its ``tokenizer.json`` is fetched once,
then read from the Hugging Face cache; ``HF_HUB_OFFLINE=1`` works after that), a local folder
holding a ``tokenizer.json``, or ``tiny``: a byte-level BPE tokenizer trained here on the project's
own documents and pairs (``model.tiny.vocab`` tokens), with no download, for tests and CI. Writes
``paths.base``/tokenizer.json.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..config import load_params, path, project_root
from ..errors import GateError

TOKENIZER_FILE = "tokenizer.json"
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


def load(params: dict[str, Any], root: Path | None = None):
    """The tokenizer the ``base`` stage wrote."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path(params, "base", root) / TOKENIZER_FILE))


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
        origin = f"tiny: trained on {len(texts)} texts"
    else:
        tokenizer = fetch(model["base"], root)
        origin = model["base"]
    tokenizer.save(str(out / TOKENIZER_FILE))
    print(f"tokenizer of {origin}: {tokenizer.get_vocab_size()} tokens -> {out.relative_to(root)}")
    return 0

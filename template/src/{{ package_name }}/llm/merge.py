"""Merge: the base model's weights with the LoRA adapter merged in, saved to ``paths.merged``.

Optional: the adapter on top of the base model (what evaluation and the registered application
use) answers the same. A merged copy is one plain transformers model (with the tokenizer), for a
server that does not load adapters; it is as large as the base model, so it is no DVC output.
"""

from __future__ import annotations

from typing import Any

from ..config import load_params, path, project_root
from ..errors import GateError


def merge(params: dict[str, Any], root=None) -> str:
    """The base weights with the adapter merged in, saved (with the tokenizer) to ``paths.merged``."""
    from . import assistant, base
    from .generate import load_local

    adapter = assistant.adapter_folder(params, root)
    if adapter is None:
        raise GateError("no adapter to merge: run the pipeline first (make repro)")
    tokenizer, model = load_local(base.source(params, root), adapter)
    merged = model.merge_and_unload()
    out = path(params, "merged", root)
    merged.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return str(out)


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "merge").parse_args(argv)
    params, root = load_params(), project_root()
    out = merge(params, root)
    print(
        f"merged the adapter into {params['model']['base']} -> {path(params, 'merged', root).relative_to(root)}"
    )
    return 0 if out else 1

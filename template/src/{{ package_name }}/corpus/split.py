"""Data Preparation (text): held-out evaluation pairs and fine-tuning pairs.

A pair goes to evaluation when a stable hash of its instruction (and ``split.seed``) falls below
``split.eval_fraction``: the same pair always lands on the same side, and adding pairs never moves
old ones; a pair marked ``"held_out": true`` (a production case a person accepted: ``make
online-eval``) always goes to evaluation. Writes ``paths.train_pairs`` and ``paths.eval_pairs``.
"""

from __future__ import annotations

import hashlib

from ..config import load_params, path
from ..errors import DataValidationError
from .collect import read_jsonl, write_jsonl


def held_out(instruction: str, seed: int, fraction: float) -> bool:
    digest = hashlib.sha256(f"{seed}:{instruction}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "split").parse_args(argv)
    params = load_params()
    settings = params["split"]
    pairs = read_jsonl(path(params, "pairs"))
    kept = [
        p.get("held_out") is True or held_out(p["instruction"], settings["seed"], settings["eval_fraction"])
        for p in pairs
    ]
    evaluation = [p for p, out in zip(pairs, kept, strict=True) if out]
    train = [p for p, out in zip(pairs, kept, strict=True) if not out]
    if not pairs:
        write_jsonl(path(params, "train_pairs"), [])
        write_jsonl(path(params, "eval_pairs"), [])
        print("split: no pairs (documents only): nothing to hold out or fine-tune on")
        return 0
    if not evaluation or not train:
        raise DataValidationError(
            f"split: {len(train)} fine-tuning and {len(evaluation)} evaluation pairs; "
            "add pairs or change split.eval_fraction so that both have some"
        )
    write_jsonl(path(params, "train_pairs"), train)
    write_jsonl(path(params, "eval_pairs"), evaluation)
    print(f"split: {len(train)} fine-tuning pairs, {len(evaluation)} held-out evaluation pairs")
    return 0

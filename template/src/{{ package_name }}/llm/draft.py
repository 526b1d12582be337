"""Draft instruction/answer pairs from the documents, for a person to review before they join data/.

For up to ``--count`` chunks of the documents (``paths.chunks``, spread evenly over them), the
configured model (``model.provider``: the local base model, or the OpenAI-compatible endpoint)
is asked for one question the excerpt answers and the answer, written as ``Question: ...`` and
``Answer: ...``. Each candidate that follows that form is written to ``--out`` (default
``data/drafts/pairs.jsonl``) with its ``source`` document and ``"draft": true``; the others are
counted, never guessed at. Nothing joins ``data.pairs`` by itself: read the drafts, fix or drop
each, then append the good ones to your pairs file (and remove ``draft``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..config import load_params, path, project_root
from ..errors import GateError

# The drafting instruction (not an application prompt: prompts/ holds those, with their variables).
INSTRUCTION = (
    "Read the excerpt of our documentation below. Write one question a user could ask that the "
    "excerpt answers, then the answer in one or two sentences, using only the excerpt. Reply in "
    "exactly this form:\nQuestion: <the question>\nAnswer: <the answer>\n\nExcerpt:\n{excerpt}\n"
)
REPLY = re.compile(
    r"Question:\s*(?P<question>.+?)\s*\n\s*Answer:\s*(?P<answer>.+)", re.IGNORECASE | re.DOTALL
)
DEFAULT_OUT = "data/drafts/pairs.jsonl"


def parse(reply: str) -> tuple[str, str] | None:
    """The question and answer of a reply in the asked form, else None."""
    match = REPLY.search(reply or "")
    if not match:
        return None
    question, answer = match["question"].strip(), match["answer"].strip().split("\nQuestion:")[0].strip()
    return (question, answer) if len(question) >= 8 and answer else None


def spread(chunks: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """``count`` chunks spread evenly over the list (which is in document order)."""
    if len(chunks) <= count:
        return chunks
    step = len(chunks) / count
    return [chunks[int(i * step)] for i in range(count)]


def draft(params: dict[str, Any], root: Path, count: int, generate=None) -> tuple[list[dict[str, Any]], int]:
    """Candidates and how many replies did not follow the form."""
    from ..corpus.collect import read_jsonl

    file = path(params, "chunks", root)
    if not file.is_file():
        raise GateError(f"{params['paths']['chunks']} is missing: run the pipeline first (make repro)")
    picked = spread(read_jsonl(file), count)
    if generate is None:  # the base model (or the endpoint), not the tuned one: it drafts, it does not answer
        from .generate import generator

        generate = generator(params, None, root)
    replies = generate([INSTRUCTION.format(excerpt=chunk["text"]) for chunk in picked])
    drafts, unusable = [], 0
    for chunk, reply in zip(picked, replies, strict=True):
        parsed = parse(reply)
        if parsed is None:
            unusable += 1
            continue
        drafts.append(
            {"instruction": parsed[0], "answer": parsed[1], "source": chunk["document"], "draft": True}
        )
    return drafts, unusable


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser
    from ..corpus.collect import write_jsonl

    options = parser(__doc__, "draft")
    options.add_argument("--count", type=int, default=40, help="how many excerpts to draft from (default 40)")
    options.add_argument(
        "--out", default=DEFAULT_OUT, help=f"where the candidates go (default {DEFAULT_OUT})"
    )
    args = options.parse_args(argv)
    params, root = load_params(), project_root()
    drafts, unusable = draft(params, root, max(args.count, 1))
    out = root / args.out
    write_jsonl(out, drafts)
    print(
        f"drafted {len(drafts)} candidate pairs -> {args.out}"
        + (
            f" ({unusable} replies did not follow 'Question: ... Answer: ...' and were left out)"
            if unusable
            else ""
        )
        + f"; review each, then append the good ones to {params['data']['pairs']}"
    )
    return 0

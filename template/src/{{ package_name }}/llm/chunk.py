"""Context management: every document cut into overlapping chunks of ``chunking.size`` tokens.

Tokens are the base model's (``base``): a chunk fits the model's context the way it is counted.
Consecutive chunks share ``chunking.overlap`` tokens, so an answer that straddles a cut is whole in
one of them. A chunk's text is the exact span of the document its tokens cover (no decoding
artefacts). Writes ``paths.chunks``: ``{"id": "<document>#<n>", "document", "title", "url", "text", "sha256"}``
(``title`` and ``url`` as ``collect`` found them, for citations).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..config import load_params, path, project_root
from ..errors import SettingsError


def windows(count: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """``[start, end)`` token windows covering ``count`` tokens."""
    if size <= 0 or not 0 <= overlap < size:
        raise SettingsError(
            f"params.yaml: chunking needs size > 0 and 0 <= overlap < size (got {size}, {overlap})"
        )
    if count == 0:
        return []
    step, spans, start = size - overlap, [], 0
    while True:
        end = min(start + size, count)
        spans.append((start, end))
        if end == count:
            return spans
        start += step


def chunk_document(document: dict[str, Any], tokenizer, size: int, overlap: int) -> list[dict[str, Any]]:
    text = document["text"]
    offsets = [span for span in tokenizer.encode(text, add_special_tokens=False).offsets if span[1] > span[0]]
    chunks = []
    for number, (start, end) in enumerate(windows(len(offsets), size, overlap)):
        piece = text[offsets[start][0] : offsets[end - 1][1]].strip()
        if piece:
            digest = hashlib.sha256(piece.encode("utf-8")).hexdigest()
            chunks.append(
                {
                    "id": f"{document['id']}#{number}",
                    "document": document["id"],
                    **{key: document[key] for key in ("title", "url") if document.get(key)},
                    "text": piece,
                    "sha256": digest,
                }
            )
    return chunks


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser
    from ..corpus.collect import read_jsonl, write_jsonl
    from . import base

    parser(__doc__, "chunk").parse_args(argv)
    params, root = load_params(), project_root()
    tokenizer = base.load(params)
    size, overlap = int(params["chunking"]["size"]), int(params["chunking"]["overlap"])
    chunks = [
        c for d in read_jsonl(path(params, "documents")) for c in chunk_document(d, tokenizer, size, overlap)
    ]
    out = path(params, "chunks")
    write_jsonl(out, chunks)
    print(f"{len(chunks)} chunks of at most {size} tokens ({overlap} shared) -> {out.relative_to(root)}")
    return 0

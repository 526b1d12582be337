"""Context management: every document cut into overlapping chunks of ``chunking.size`` tokens.

Tokens are the base model's (``base``): a chunk fits the model's context the way it is counted.
Consecutive chunks share ``chunking.overlap`` tokens, so an answer that straddles a cut is whole in
one of them. A chunk's text is the exact span of the document its tokens cover (no decoding
artefacts). Writes ``paths.chunks``: ``{"id": "<document>#<n>", "document", "title", "url", "text", "sha256"}``
(``title`` and ``url`` as ``collect`` found them, for citations). Only new and changed documents are
tokenized again: the cuts are kept in ``paths.chunk_spans`` (``corpus/cache.py``).
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


def spans(text: str, tokenizer, size: int, overlap: int) -> list[tuple[int, int]]:
    """The ``[start, end)`` character spans of ``text`` that its token windows cover."""
    return cut(offsets_of(text, tokenizer), size, overlap)


def offsets_of(text: str, tokenizer) -> list[tuple[int, int]]:
    """The character span of each of ``text``'s tokens (empty ones left out)."""
    return [span for span in tokenizer.encode(text, add_special_tokens=False).offsets if span[1] > span[0]]


def cut(offsets: list[tuple[int, int]], size: int, overlap: int) -> list[tuple[int, int]]:
    """The character spans of the token windows over tokens at ``offsets``. A window whose last
    token holds only the first bytes of a character (byte-level tokenizers split "–" in two) ends
    before that character: it would take the next token along and be one token too long."""
    cuts = []
    for a, b in windows(len(offsets), size, overlap):
        end = offsets[b - 1][1]
        if b < len(offsets) and offsets[b][0] < end:
            end = offsets[b][0]
        cuts.append((offsets[a][0], end))
    return cuts


def chunks_of(document: dict[str, Any], cuts: list[tuple[int, int]]) -> list[dict[str, Any]]:
    text, chunks = document["text"], []
    for number, (start, end) in enumerate(cuts):
        piece = text[start:end].strip()
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


def chunk_documents(
    documents, tokenizer, size: int, overlap: int, cache_file=None
) -> tuple[list[dict[str, Any]], int]:
    """Every document's chunks, and how many documents were cut: one whose text, the settings and
    the tokenizer are unchanged since the last run is cut where it was then."""
    import sys

    from ..corpus.cache import Cache, digest, source_version

    cache = Cache(cache_file)
    settings = digest(source_version(sys.modules[__name__]), tokenizer.to_str(), str(size), str(overlap))
    chunks, cut = [], 0
    for document in documents:
        key = digest(settings, document["text"])
        row = cache.get(key)
        if row is None:
            row, cut = cache.put(key, {"spans": spans(document["text"], tokenizer, size, overlap)}), cut + 1
        chunks += chunks_of(document, row["spans"])
    cache.save()
    return chunks, cut


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser
    from ..corpus.cache import cache_file
    from ..corpus.collect import read_jsonl, write_jsonl
    from . import base

    parser(__doc__, "chunk").parse_args(argv)
    params, root = load_params(), project_root()
    tokenizer = base.load(params)
    size, overlap = int(params["chunking"]["size"]), int(params["chunking"]["overlap"])
    documents = read_jsonl(path(params, "documents"))
    chunks, cut = chunk_documents(documents, tokenizer, size, overlap, cache_file(params, "chunk_spans"))
    out = path(params, "chunks")
    write_jsonl(out, chunks)
    print(
        f"{len(chunks)} chunks of at most {size} tokens ({overlap} shared; {cut} documents cut, "
        f"{len(documents) - cut} unchanged) -> {out.relative_to(root)}"
    )
    return 0

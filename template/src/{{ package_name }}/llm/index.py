"""Vector embedding and the index: embed the chunks and store them where retrieval searches them.

``retrieval.store`` in ``params.yaml``:

- ``flat`` (default): exact inner-product search over a NumPy matrix in ``paths.index``
  (``vectors.npy``, ``chunks.jsonl``): plain files that DVC versions and caches like any output,
  milliseconds for tens of thousands of chunks;
- ``qdrant``: a Qdrant collection, in local files under ``paths.index`` (``qdrant-client``'s local
  mode) or, with ``retrieval.url`` set, on a Qdrant server: the same client API, for scale.

With ``retrieval.hybrid``, keyword (BM25) and vector rankings are fused (``keywords.py``).
Only chunks whose text changed are embedded again (``embed.py``'s cache); the command says how
many. With guardrails (``guardrails/policy.yaml``), a chunk that carries instructions for the model
(an injection hidden in a document) is quarantined before it is embedded: left out of the index
(``input.retrieved.action: drop``; ``flag`` keeps it) and listed, with the patterns it matched, in
``quarantined.jsonl`` beside the index; the service screens what it retrieves again. ``Retriever``
is what evaluation (and the service) search with.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..config import load_params, path, project_root

COLLECTION = "chunks"


class Retriever:
    """Top-k chunks for queries, from an index folder written by ``build`` (or, for ``sweep.py``,
    from an embedder, chunks and vectors in memory: ``Retriever.of``)."""

    def __init__(self, folder: Path | None, retrieval: dict[str, Any]):
        self.folder = Path(folder) if folder is not None else None
        self.store = retrieval.get("store", "flat")
        self.url = retrieval.get("url") or ""
        self.hybrid = bool(retrieval.get("hybrid", False))
        self._client = None
        if self.folder is None:
            return
        import numpy as np

        from . import embed

        self.embedder = embed.load(self.folder)
        self.chunks = [
            json.loads(line)
            for line in (self.folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        self._vectors = np.load(self.folder / "vectors.npy") if self.store == "flat" else None
        self._keywords = self._bm25()

    @classmethod
    def of(cls, embedder, chunks: list[dict[str, Any]], vectors, retrieval: dict[str, Any]) -> Retriever:
        found = cls(None, {**retrieval, "store": "flat"})
        found.embedder, found.chunks, found._vectors = embedder, chunks, vectors
        found._keywords = found._bm25()
        return found

    def _bm25(self):
        if not self.hybrid:
            return None
        from .keywords import Bm25

        return Bm25([c["text"] for c in self.chunks])

    def _qdrant(self):
        if self._client is None:
            from qdrant_client import QdrantClient

            self._client = (
                QdrantClient(url=self.url) if self.url else QdrantClient(path=str(self.folder / "qdrant"))
            )
        return self._client

    def search(self, queries: list[str], k: int) -> list[list[dict[str, Any]]]:
        """For each query, the ``k`` best chunks (``{"id", "document", "title", "url", "text", "score"}``),
        best first; ``score``: the vector similarity (hybrid: the order is the fused one)."""
        import numpy as np

        from .keywords import CANDIDATES, fuse

        vectors = self.embedder.embed(queries)
        found = []
        wanted = max(k, CANDIDATES) if self._keywords is not None else k
        for query, vector in zip(queries, vectors, strict=True):
            if self.store == "flat":
                scores = self._vectors @ vector
                order = np.argsort(-scores, kind="stable")[:wanted]
                similarity = {int(i): float(scores[i]) for i in order}
            else:
                points = self._qdrant().query_points(COLLECTION, query=vector.tolist(), limit=wanted).points
                order = [int(p.id) for p in points]
                similarity = {int(p.id): float(p.score) for p in points}
            if self._keywords is None:
                rows = [int(i) for i in order[:k]]
            else:
                rows = fuse(order, self._keywords.scores(query), k)
                self._fill(similarity, rows, vector, scores if self.store == "flat" else None)
            found.append([{**self.chunks[i], "score": similarity[i]} for i in rows])
        return found

    def _fill(self, similarity: dict[int, float], rows: list[int], vector, scores) -> None:
        """The vector similarity of chunks the keywords brought in."""
        missing = [row for row in rows if row not in similarity]
        if not missing:
            return
        if scores is not None:
            similarity.update({row: float(scores[row]) for row in missing})
            return
        for point in self._qdrant().retrieve(COLLECTION, ids=missing, with_vectors=True):
            similarity[int(point.id)] = float(
                sum(a * b for a, b in zip(point.vector, vector.tolist(), strict=True))
            )


CHUNK_KEYS = ("id", "document", "title", "url", "text")  # what a search returns of each chunk


def build(
    chunks: list[dict[str, Any]], retrieval: dict[str, Any], folder: Path, cache: Path
) -> dict[str, Any]:
    """Embed ``chunks`` (through the cache) into a fresh index at ``folder``; returns what was done."""
    import numpy as np

    from . import embed

    model = embed.embedder(retrieval)
    features, computed = embed.cached_features(model, chunks, cache)
    model.fit(features)
    vectors = model.finish(features).astype(np.float32) if len(chunks) else features
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    model.save(folder)
    with (folder / "chunks.jsonl").open("w", encoding="utf-8") as handle:
        for chunk in chunks:
            handle.write(
                json.dumps({k: chunk[k] for k in CHUNK_KEYS if k in chunk}, ensure_ascii=False) + "\n"
            )
    store = retrieval.get("store", "flat")
    if store == "flat":
        np.save(folder / "vectors.npy", vectors)
    else:
        _fill_qdrant(vectors, folder, retrieval.get("url") or "")
    return {"chunks": len(chunks), "embedded": computed, "reused": len(chunks) - computed, "store": store}


def _fill_qdrant(vectors, folder: Path, url: str) -> None:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(url=url) if url else QdrantClient(path=str(folder / "qdrant"))
    if client.collection_exists(COLLECTION):
        client.delete_collection(COLLECTION)
    client.create_collection(
        COLLECTION,
        vectors_config=models.VectorParams(size=int(vectors.shape[1]), distance=models.Distance.DOT),
    )
    client.upsert(
        COLLECTION, points=[models.PointStruct(id=i, vector=v.tolist()) for i, v in enumerate(vectors)]
    )
    client.close()


QUARANTINE_FILE = "quarantined.jsonl"


def quarantine(chunks: list[dict[str, Any]], root: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chunks to index, and those the guardrails' ``retrieved`` rule finds instructions in
    (each with the rule's action and what matched); no policy: every chunk, none found."""
    if not (root / "guardrails/policy.yaml").is_file():  # a project without guardrails
        return chunks, []
    from ..guardrails import policy
    from ..guardrails.rails import Rails

    rails = Rails(policy.load(root))
    kept, found = [], []
    for chunk in chunks:
        screened = rails.check_retrieved(chunk["text"])
        for trigger in screened.triggers:
            found.append(
                {
                    "id": chunk["id"],
                    "document": chunk.get("document", ""),
                    "action": trigger.action,
                    "detail": trigger.detail,
                }
            )
        if screened.blocked is None:
            kept.append(chunk)
    return kept, found


def open_index(params: dict[str, Any], root: Path | None = None) -> Retriever:
    return Retriever(path(params, "index", root), params["retrieval"])


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser
    from ..corpus.collect import read_jsonl

    parser(__doc__, "index").parse_args(argv)
    params = load_params()
    chunks, found = quarantine(read_jsonl(path(params, "chunks")), project_root())
    folder = path(params, "index")
    done = build(chunks, params["retrieval"], folder, path(params, "embeddings_cache"))
    print(
        f"index ({done['store']}): {done['chunks']} chunks, {done['embedded']} embedded, "
        f"{done['reused']} unchanged and reused -> {params['paths']['index']}"
    )
    with (folder / QUARANTINE_FILE).open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(entry, ensure_ascii=False) + "\n" for entry in found)
    if found:
        dropped = sum(entry["action"] == "drop" for entry in found)
        shown = ", ".join(entry["id"] for entry in found[:5]) + (
            f" (and {len(found) - 5} more)" if len(found) > 5 else ""
        )
        print(
            f"index: {len(found)} chunks carry instructions for the model ({dropped} left out, "
            f"guardrails/policy.yaml input.retrieved): {shown} -> "
            f"{params['paths']['index']}/{QUARANTINE_FILE}"
        )
    return 0

"""Vector embedding: text to unit vectors, with a cache so unchanged chunks are never embedded twice.

Two embedders, by ``retrieval.embedder`` in ``params.yaml``:

- ``hashing`` (default): IDF-weighted signed feature hashing of words and word pairs (stop words
  left out, suffixes stripped) into
  ``retrieval.dimensions`` buckets. No model, no download, milliseconds per chunk, and good enough
  to gate retrieval on for a domain corpus. A chunk's hashed term counts depend on the chunk alone
  (they are what the cache keeps); the IDF weights depend on the whole corpus and are recomputed
  on every index build, which is one cheap matrix product.
- a sentence-transformers model id or folder (e.g. ``sentence-transformers/all-MiniLM-L6-v2``):
  downloaded once into the Hugging Face cache; needs the ``sentence-transformers`` package.

The cache (``paths.embeddings_cache``, kept between runs) maps a chunk's SHA-256 to its cached
vector, for the embedder that wrote it; any other embedder starts a new cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import hashing


class HashingEmbedder:
    kind = "hashing"
    version = 2  # part of the cache's signature: change it whenever the features change

    def __init__(self, dimensions: int = 1024, idf=None):
        self.dimensions = int(dimensions)
        self.idf = idf

    @property
    def signature(self) -> str:
        return f"hashing-v{self.version}:{self.dimensions}"

    def features(self, texts: list[str]):
        """Sublinear, signed, hashed term counts: one row per text (what the cache keeps)."""
        return hashing.features(texts, self.dimensions)

    def fit(self, features) -> None:
        """IDF weights of the buckets over the corpus (smoothed: a bucket no chunk uses weighs most)."""
        import numpy as np

        documents = max(len(features), 1)
        frequency = (features != 0).sum(axis=0)
        self.idf = (np.log((1.0 + documents) / (1.0 + frequency)) + 1.0).astype(np.float32)

    def finish(self, features):
        import numpy as np

        weighted = features * self.idf
        norms = np.linalg.norm(weighted, axis=1, keepdims=True)
        return weighted / np.where(norms == 0, 1.0, norms)

    def embed(self, texts: list[str]):
        return self.finish(self.features(texts))

    def save(self, folder: Path) -> None:
        import numpy as np

        np.save(folder / "idf.npy", self.idf)
        (folder / "embedder.json").write_text(
            json.dumps({"kind": self.kind, "dimensions": self.dimensions}) + "\n"
        )


class SentenceEmbedder:
    kind = "sentence-transformers"

    def __init__(self, model: str):
        self.model_id = model
        self._model = None

    @property
    def signature(self) -> str:
        return f"sentence-transformers:{self.model_id}"

    def features(self, texts: list[str]):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            from .generate import torch_device

            self._model = SentenceTransformer(self.model_id, device=torch_device())
        return self._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True).astype("float32")

    def fit(self, features) -> None:
        return None

    def finish(self, features):
        return features

    def embed(self, texts: list[str]):
        return self.features(texts)

    def save(self, folder: Path) -> None:
        (folder / "embedder.json").write_text(json.dumps({"kind": self.kind, "model": self.model_id}) + "\n")


def embedder(retrieval: dict[str, Any]):
    name = str(retrieval.get("embedder", "hashing"))
    if name == "hashing":
        return HashingEmbedder(int(retrieval.get("dimensions", 1024)))
    return SentenceEmbedder(name)


def load(folder: Path):
    """The embedder an index was built with (its IDF weights included)."""
    import numpy as np

    state = json.loads((folder / "embedder.json").read_text())
    if state["kind"] == "hashing":
        return HashingEmbedder(state["dimensions"], np.load(folder / "idf.npy"))
    return SentenceEmbedder(state["model"])


def cached_features(model, chunks: list[dict[str, Any]], cache_file: Path):
    """Features of every chunk, computing only those the cache lacks; returns ``(matrix, computed)``
    and rewrites the cache with exactly the current chunks."""
    import numpy as np

    cached: dict[str, Any] = {}
    if cache_file.is_file():
        with np.load(cache_file, allow_pickle=False) as stored:
            if str(stored["signature"]) == model.signature:
                cached = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
    missing = [c for c in chunks if c["sha256"] not in cached]
    if missing:
        cached.update(
            zip([c["sha256"] for c in missing], model.features([c["text"] for c in missing]), strict=True)
        )
    keys = [c["sha256"] for c in chunks]
    matrix = np.stack([cached[k] for k in keys]) if keys else np.zeros((0, 0), dtype=np.float32)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache_file, signature=np.array(model.signature), keys=np.array(keys), vectors=matrix)
    return matrix, len(missing)

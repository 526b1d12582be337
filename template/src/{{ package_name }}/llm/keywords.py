"""Keyword retrieval: BM25 over the chunks' words, fused with the vector ranking (``retrieval.hybrid``).

Exact words (an error code, a function or product name) are what embeddings blur and keywords
find. With ``hybrid: true`` the retriever ranks the chunks both ways and fuses the two rankings by
reciprocal rank (a chunk scores ``1 / (60 + rank)`` in each, summed over the two: no weights to
tune, and neither score's scale matters). The words are those the hashing embedder sees (stop words
left out, suffixes stripped). The ``score`` a search returns stays the vector similarity, the
scale the cache and routing thresholds are set in.
"""

from __future__ import annotations

import math

from .hashing import stems as words

K1, B = 1.2, 0.75  # BM25's usual term-frequency saturation and length normalisation
FUSION = 60  # reciprocal rank fusion's constant (Cormack et al., 2009)
CANDIDATES = 50  # each ranking's best this many chunks take part in the fusion


class Bm25:
    """BM25 scores of every chunk for a query, from an inverted index built once."""

    def __init__(self, texts: list[str]):
        import numpy as np

        self.size = len(texts)
        counts: list[dict[str, int]] = []
        for text in texts:
            found: dict[str, int] = {}
            for word in words(text):
                found[word] = found.get(word, 0) + 1
            counts.append(found)
        lengths = np.array([sum(c.values()) for c in counts], dtype=np.float64)
        average = float(lengths.mean()) if self.size and lengths.mean() > 0 else 1.0
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for row, found in enumerate(counts):
            for word, count in found.items():
                ids, tfs = postings.setdefault(word, ([], []))
                ids.append(row)
                tfs.append(count)
        self.postings = {}
        for word, (ids, tfs) in postings.items():
            tf = np.array(tfs, dtype=np.float64)
            norm = K1 * (1 - B + B * lengths[ids] / average)
            idf = math.log(1 + (self.size - len(ids) + 0.5) / (len(ids) + 0.5))
            self.postings[word] = (np.array(ids), idf * tf * (K1 + 1) / (tf + norm))

    def scores(self, query: str):
        import numpy as np

        total = np.zeros(self.size)
        for word in set(words(query)):
            if word in self.postings:
                ids, weights = self.postings[word]
                total[ids] += weights
        return total


def fuse(vector_order, keyword_scores, k: int) -> list[int]:
    """The ``k`` best chunk rows by reciprocal rank fusion of the vector ranking (rows, best
    first) and the keyword scores (one per row; a chunk with no query word is not ranked by them)."""
    import numpy as np

    fused: dict[int, float] = {}
    for rank, row in enumerate(list(vector_order)[:CANDIDATES]):
        fused[int(row)] = fused.get(int(row), 0.0) + 1 / (FUSION + rank + 1)
    order = np.argsort(-keyword_scores, kind="stable")[:CANDIDATES]
    for rank, row in enumerate(order):
        if keyword_scores[row] <= 0:
            break
        fused[int(row)] = fused.get(int(row), 0.0) + 1 / (FUSION + rank + 1)
    return sorted(fused, key=lambda row: (-fused[row], row))[:k]

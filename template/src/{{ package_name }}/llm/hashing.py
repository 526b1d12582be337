"""Hashed words: a text as sublinear, signed counts of its words and word pairs hashed into a fixed
number of buckets (stop words left out, suffixes stripped). No model, no vocabulary, the same row
for the same text anywhere: the hashing embedder of retrieval (``embed.py``) weighs these rows by
IDF; the semantic cache (``chat/cache.py``) compares them as they are when there is no index."""

from __future__ import annotations

import hashlib

from .words import STOPWORDS, WORD

SUFFIXES = ("ing", "ed", "es", "s")


def stem(word: str) -> str:
    """A light suffix strip, so "reported", "reports" and "report" meet."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def stems(text: str) -> list[str]:
    """A text's words as the hashing embedder, the keyword ranking and routing see them: lower
    case, stop words left out, suffixes stripped."""
    return [stem(w) for w in WORD.findall(text.lower()) if w not in STOPWORDS]


def terms(text: str) -> list[str]:
    words = stems(text)
    return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


def features(texts: list[str], dimensions: int):
    """One row of ``dimensions`` per text: each bucket ``sign * (1 + log |count|)`` of its terms."""
    import numpy as np

    rows = np.zeros((len(texts), dimensions), dtype=np.float32)
    for row, text in enumerate(texts):
        counts: dict[int, float] = {}
        for term in terms(text):
            value = int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest(), "big")
            bucket, sign = value % dimensions, 1.0 if (value >> 63) & 1 else -1.0
            counts[bucket] = counts.get(bucket, 0.0) + sign
        for bucket, count in counts.items():
            rows[row, bucket] = np.sign(count) * (1.0 + np.log(abs(count))) if count else 0.0
    return rows


def unit_rows(texts: list[str], dimensions: int = 1024):
    """``features`` scaled to unit length (an empty text: a row of zeros)."""
    import numpy as np

    rows = features(texts, dimensions)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)

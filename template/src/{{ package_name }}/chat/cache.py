"""A semantic cache in front of generation (``cache`` in params.yaml).

A question whose embedding (the index's embedder; without retrieval, hashed words) is at least
``cache.threshold`` cosine-similar to one answered before, under the same settings (the variant,
``max_tokens``), gets that answer: no retrieval, no generation, no cost. The question still passes
the input rails first, and only answers the output rails let out untouched (no rule fired) are
kept, so a cached answer is one the guardrails passed. Eligible requests: one user turn, one
answer, no tools, no ``response_format``, no ``seed`` or ``stop`` (asking for those asks for a new
answer), and not QA or load-test traffic (``X-Traffic: qa``: it measures the model). Entries expire after ``cache.ttl_hours``; past ``cache.max_entries`` the oldest go.

A hit is logged with ``cached_from`` (the request whose answer it gave) and ``saved_cost`` (what
that answer cost), counted in ``chat_cache_requests_total{result}`` and
``chat_saved_cost_total{by="cache"}``. ``held_out_check`` measures a threshold on the held-out pairs
(the ``evaluate`` stage): the training pairs' answers as the cache, each held-out question looked
up; ``cache_wrong_hits`` is the share answered from the cache with an answer unlike its reference
(ROUGE-L below 0.5), gated in ``business/kpis.yaml``: a threshold set too loose fails the gate.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORRECT_ROUGE = 0.5  # a cached answer at least this close to the reference counts as right


@dataclass
class Entry:
    question: str
    answer: str
    contexts: list[dict[str, Any]]
    cost: float
    request_id: str
    finish_reason: str = "stop"  # or length: the key holds max_tokens, the answer ends alike
    stored: float = field(default_factory=lambda: time.monotonic())


class SemanticCache:
    def __init__(self, embed, threshold: float, max_entries: int = 10_000, ttl_hours: float = 24.0):
        self.embed, self.threshold = embed, float(threshold)
        self.max_entries, self.ttl = int(max_entries), float(ttl_hours) * 3600
        self._keys: list[str] = []
        self._entries: list[Entry] = []
        self._vectors = None  # one row per entry, normalised
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: str, question: str) -> tuple[Entry | None, float]:
        """The closest live entry of ``key`` at or above the threshold (None when none), and its
        similarity."""
        import numpy as np

        if not self._entries:
            return None, 0.0
        vector = self.embed([question])[0]
        with self._lock:
            now = time.monotonic()
            scores = self._vectors @ vector
            live = np.array(
                [
                    k == key and now - e.stored <= self.ttl
                    for k, e in zip(self._keys, self._entries, strict=True)
                ]
            )
            scores = np.where(live, scores, -1.0)
            best = int(scores.argmax())
            score = float(scores[best])
            return (self._entries[best] if score >= self.threshold else None), score

    def store(self, key: str, entry: Entry) -> None:
        import numpy as np

        vector = self.embed([entry.question]).astype(np.float32)
        with self._lock:
            self._keys.append(key)
            self._entries.append(entry)
            self._vectors = vector if self._vectors is None else np.vstack([self._vectors, vector])
            excess = len(self._entries) - self.max_entries
            if excess > 0:
                del self._keys[:excess], self._entries[:excess]
                self._vectors = self._vectors[excess:]


def embedder_for(params: dict[str, Any], root: Path, retriever=None):
    """``texts -> normalised vectors``: the index's embedder, else hashed words weighed alike."""
    if retriever is not None:
        return retriever.embedder.embed
    from ..llm.hashing import unit_rows

    return unit_rows


def load(params: dict[str, Any], root: Path, retriever=None) -> SemanticCache | None:
    settings = params.get("cache") or {}
    if not settings.get("enabled", False):
        return None
    return SemanticCache(
        embedder_for(params, root, retriever),
        settings.get("threshold", 0.95),
        settings.get("max_entries", 10_000),
        settings.get("ttl_hours", 24),
    )


def eligible(request) -> bool:
    asked = request.asked
    turns = [m for m in request.messages if m["role"] not in ("system", "developer")]
    return (
        request.n == 1
        and request.tools is None
        and len(turns) == 1
        and getattr(asked, "response_format", None) is None
        and getattr(asked, "seed", None) is None
        and not getattr(asked, "stop", None)
    )


def key_of(request, variant: str) -> str:
    return f"{variant}|{request.asked.max_new_tokens}"


def held_out_check(
    params: dict[str, Any],
    train: list[dict[str, Any]],
    held_out: list[dict[str, Any]],
    retriever=None,
    root=None,
):
    """``cache_hit_rate`` and ``cache_wrong_hits`` of ``cache.threshold`` on the held-out pairs, the
    training pairs' reference answers standing in for cached answers."""
    from ..llm.scores import rouge_l

    settings = params.get("cache") or {}
    cache = SemanticCache(embedder_for(params, root, retriever), settings.get("threshold", 0.95))
    for number, pair in enumerate(train):
        cache.store("", Entry(pair["instruction"], pair["answer"], [], 0.0, f"train-{number}"))
    hits = wrong = 0
    for pair in held_out:
        entry, _ = cache.lookup("", pair["instruction"])
        if entry is None:
            continue
        hits += 1
        wrong += rouge_l([entry.answer], [pair["answer"]]) < CORRECT_ROUGE
    count = max(len(held_out), 1)
    return {"cache_hit_rate": round(hits / count, 6), "cache_wrong_hits": round(wrong / count, 6)}

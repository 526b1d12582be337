"""A learned screen beside the injection patterns: a logistic regression over the words and word
pairs of a question as a reader sees it (``reveal.fold``), trained on the project's own sets.

It learns from the attacks of ``guardrails/attacks.jsonl`` (all but personal data) against the
questions of ``guardrails/benign.jsonl`` and the instructions of the project's pairs (the questions
it exists to answer), when the rails are built: no model file, nothing downloaded, a fraction of a
second, and every case ``make guardrails-review APPLY=1`` adds teaches it. The patterns catch the
wordings someone wrote down; the detector scores the wordings around them. It runs on the user's
question only (a retrieved chunk is documentation, which it was not trained on).

The guardrails stage never scores an example with a detector that learned from it: each attack is
scored by a detector trained without its whole family, each benign question by one trained without
its fifth of the benign set (``held_out``). Those are the rates the gate holds the policy to.
"""

from __future__ import annotations

import functools
import json
import math
import re
import zlib
from pathlib import Path
from typing import Any

from .reveal import fold

BUCKETS = 2**18  # hashed features: words and word pairs
TOKENS = re.compile(r"[^\W_]+|[^\w\s]")  # words (any script) and single marks
PERSONAL = "pii"  # attacks the pii rule stops: a value, not a wording; not learned
FLOOR = 24  # a text's features are scaled by 1/sqrt(their count, at least this): "Thank you." is
# two words, not enough to be sure of anything


def features(text: str) -> list[int]:
    """The hashed words and adjacent word pairs of ``text`` as a reader sees it, each once."""
    tokens = TOKENS.findall(fold(text).lower())
    grams = tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]
    return list({zlib.crc32(gram.encode()) % BUCKETS for gram in grams})


class Detector:
    """``score(text)``: how likely ``text`` is an attack (0-1), learned from the examples.

    L2-regularised logistic regression on binary features scaled to unit length, the classes
    weighted equally, fitted by accelerated gradient descent in numpy (the loss is smooth with a
    known bound on its curvature, so a fixed step converges)."""

    def __init__(
        self,
        attacks: list[str],
        benign: list[str],
        strength: float = 1e-4,
        steps: int = 200,
        known: dict[str, list[int]] | None = None,
    ):
        """``known``: texts' ``features`` already computed (``held_out`` trains many detectors on
        the same texts)."""
        import numpy as np

        texts = attacks + benign
        known = known or {}
        rows, cols, values = [], [], []
        for row, text in enumerate(texts):
            found = known[text] if text in known else features(text)
            rows += [row] * len(found)
            cols += found
            values += [1 / math.sqrt(max(len(found), FLOOR))] * len(found)
        used, cols_ = np.unique(np.array(cols, dtype=np.int64), return_inverse=True)  # features seen
        rows_, values_ = np.array(rows), np.array(values)
        labels = np.array([1.0] * len(attacks) + [0.0] * len(benign))
        weight = np.where(labels == 1, 0.5 / max(len(attacks), 1), 0.5 / max(len(benign), 1))
        n = len(texts)

        def gradient(w: np.ndarray, bias: float) -> tuple[np.ndarray, float]:
            logits = np.bincount(rows_, weights=w[cols_] * values_, minlength=n) + bias
            error = weight * (1 / (1 + np.exp(-np.clip(logits, -30, 30))) - labels)
            return np.bincount(
                cols_, weights=error[rows_] * values_, minlength=len(used)
            ) + strength * w, error.sum()

        step = 1 / (0.25 + strength)  # 1 / the largest curvature: rows have unit length, weights sum to 1
        w, bias = np.zeros(len(used)), 0.0
        ahead_w, ahead_bias, momentum = w.copy(), bias, 1.0
        for _ in range(steps):
            grad_w, grad_bias = gradient(ahead_w, ahead_bias)
            new_w, new_bias = ahead_w - step * grad_w, ahead_bias - step * grad_bias
            following = (1 + math.sqrt(1 + 4 * momentum * momentum)) / 2
            ahead_w = new_w + (momentum - 1) / following * (new_w - w)
            ahead_bias = new_bias + (momentum - 1) / following * (new_bias - bias)
            w, bias, momentum = new_w, new_bias, following
        weights = np.zeros(BUCKETS)
        weights[used] = w
        self.weights = weights.tolist()  # a list: one Python index per feature when scoring
        self.bias = float(bias)

    def score(self, text: str) -> float:
        found = features(text)
        if not found:
            return 0.0
        weights = self.weights
        logit = sum(weights[f] for f in found) / math.sqrt(max(len(found), FLOOR)) + self.bias
        return 1 / (1 + math.exp(-max(min(logit, 30.0), -30.0)))


def learned(attacks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The attacks the detector learns from: all but those of the ``pii`` rule."""
    return [row for row in attacks if row.get("rule", "injection") != PERSONAL]


def examples(root: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """The sets' attacks and benign questions, and the instructions of the project's pairs."""
    from ..config import load_params, path
    from ..corpus.collect import read_jsonl
    from ..errors import SettingsError
    from .check import ATTACKS, BENIGN, read_set

    attacks, benign = read_set(root / ATTACKS), read_set(root / BENIGN)
    try:
        pairs = path(load_params(root), "pairs", root)
    except (SettingsError, KeyError):  # no pairs, or settings that the stages report
        pairs = None
    rows = read_jsonl(pairs) if pairs is not None and pairs.is_file() else []  # collected: checked
    questions = [row["instruction"] for row in rows if str(row.get("instruction") or "").strip()]
    return attacks, benign, questions


def for_project(root: Path) -> Detector:
    """The detector of the project at ``root``, trained on its sets and questions (once per process
    for the same examples)."""
    attacks, benign, questions = examples(root)
    texts = [row["text"] for row in learned(attacks)], [row["text"] for row in benign] + questions
    return _trained(json.dumps(texts))


@functools.lru_cache(maxsize=8)
def _trained(texts: str) -> Detector:
    """A detector per distinct set of examples (the JSON of both lists is the cache's key)."""
    attacks, benign = json.loads(texts)
    return Detector(attacks, benign)


FOLDS = 5


def held_out(
    attacks: list[dict[str, Any]], benign: list[dict[str, Any]], questions: list[str] = ()
) -> tuple[dict[str, Detector], list[Detector]]:
    """Detectors that never saw what they score: one per attack family (trained on every other
    family and all benign examples) and one per fifth of the benign set (trained on every attack and
    the other fifths; benign row ``n`` is in fifth ``n % 5``)."""
    rows = learned(attacks)
    ordinary = [row["text"] for row in benign]
    known = {text: features(text) for text in {*ordinary, *questions, *(row["text"] for row in rows)}}
    by_family = {
        family: Detector(
            [row["text"] for row in rows if row.get("family", "other") != family],
            ordinary + list(questions),
            known=known,
        )
        for family in sorted({row.get("family", "other") for row in rows})
    }
    by_fold = [
        Detector(
            [row["text"] for row in rows],
            [text for n, text in enumerate(ordinary) if n % FOLDS != fold_] + list(questions),
            known=known,
        )
        for fold_ in range(FOLDS)
    ]
    return by_family, by_fold

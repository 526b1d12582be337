"""Answer scores against the reference answers and the context, all offline.

- ``rouge_l``: mean ROUGE-L F-measure against the reference (``rouge-score``, stemmed), 0 to 1;
- ``bleu``: corpus BLEU against the references (``sacrebleu``), 0 to 100;
- ``faithfulness``: a grounding proxy, the mean share of an answer's content words (not stop words)
  found in the context it was given (the retrieved chunks; the source document without retrieval).
  An answer that says nothing scores 0. It is a proxy: it catches answers made up away from the
  documents, not a wrong reading of them (an LLM judge can do that, ``judge.py``).
"""

from __future__ import annotations

from .words import STOPWORDS, WORD

METRICS = ("rouge_l", "bleu", "faithfulness")


def rouge_l(answers: list[str], references: list[str]) -> float:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score(ref, ans)["rougeL"].fmeasure for ans, ref in zip(answers, references, strict=True)]
    return round(sum(scores) / max(len(scores), 1), 6)


def bleu(answers: list[str], references: list[str]) -> float:
    import sacrebleu

    return round(float(sacrebleu.corpus_bleu(answers, [references]).score), 6)


def content_words(text: str) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if w not in STOPWORDS]


def vocabulary(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def known_share(text: str, known: set[str]) -> float:
    """The share of ``text``'s content words in ``known`` (0 when it has none)."""
    words = content_words(text)
    return sum(w in known for w in words) / len(words) if words else 0.0


def grounded_share(answer: str, context: str) -> float:
    return known_share(answer, vocabulary(context))


def faithfulness(answers: list[str], contexts: list[str]) -> float:
    shares = [grounded_share(a, c) for a, c in zip(answers, contexts, strict=True)]
    return round(sum(shares) / max(len(shares), 1), 6)


def score(answers: list[str], references: list[str], contexts: list[str]) -> dict[str, float]:
    return {
        "rouge_l": rouge_l(answers, references),
        "bleu": bleu(answers, references),
        "faithfulness": faithfulness(answers, contexts),
    }

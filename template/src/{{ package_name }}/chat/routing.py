"""Model routing (``routing`` in params.yaml): easy questions answered without the model.

The router sends each request that reaches generation (the input rails passed it, the cache did
not answer it) down one of two routes:

- ``extractive``: an easy question, answered straight from the documents. Easy means: one user
  turn, one answer, no tools and no ``response_format`` (what the cache also asks), at most
  ``routing.max_words`` words, and a best retrieved chunk (after the rails' screen) scoring at
  least ``routing.min_score`` (the index's similarity, 0 to 1). The answer is the chunk's whole
  sentence (its line breaks joined, the pieces its cut left at either end dropped) that holds most
  of the question's words, with the next one when it is short, cut to the request's
  ``max_tokens``; when no whole sentence holds any of them, the model answers. No prompt, no
  generation: it costs nothing, and the output rails still screen it.
- ``main``: everything else, the configured model as without routing.

Every answer says its route (``route`` in the response, the request log and the audit trail;
``chat_route_requests_total{route}`` in /metrics). What an extractive answer saved is what the
main model would have cost for it: the prompt it would have been sent and an answer as long as
the one given (``saved_cost`` in the log, ``chat_saved_cost_total{by="routing"}``; ``make drift``
reports the savings per cause). The ``evaluate`` stage routes the held-out questions the same way
and gates each route's answers against the main model's on the same questions
(``routing`` in ``business/kpis.yaml``: a tolerance per answer score, and how many held-out
questions a route must take at least to be judged).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAIN, EXTRACTIVE = "main", "extractive"
ROUTES = (MAIN, EXTRACTIVE)
PARAGRAPH = re.compile(r"\n\s*\n")
SENTENCE = re.compile(r"(?<=[.!?])\s+")
ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")  # a list item starts a unit of its own
WHOLE = re.compile(r"[.!?:;)\"'\u201d\u00bb]$")  # how a whole sentence ends
ANSWER_SCORES = ("rouge_l", "bleu", "faithfulness")  # llm/scores.py: what a route's answers get
SHORT = 8  # words: a sentence this short takes the next one along


@dataclass(frozen=True)
class Router:
    max_words: int = 12
    min_score: float = 0.15

    def route(self, question: str, contexts: list[dict[str, Any]], request=None) -> str:
        """``extractive`` for an easy question (``request``: the chat request, when there is one,
        must be a single plain turn), else ``main``."""
        if request is not None:
            from .cache import eligible

            if not eligible(request):
                return MAIN
        if not contexts or len(question.split()) > self.max_words:
            return MAIN
        return EXTRACTIVE if float(contexts[0].get("score", 0.0)) >= self.min_score else MAIN


def sentences(text: str) -> list[str]:
    """The whole sentences of a chunk: paragraphs joined across their line breaks (hard-wrapped
    Markdown), list items apart, headings left out, and the pieces its cut left at either end (a
    first one that starts in lower case, a last one with no closing punctuation) dropped."""
    units: list[str] = []
    for paragraph in PARAGRAPH.split(text):
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        current: list[str] = []
        for line in lines:
            if line.startswith("#"):  # a heading names a topic, it answers nothing
                continue
            if ITEM.match(line) and current:
                units.append(" ".join(current))
                current = []
            current.append(ITEM.sub("", line))
        if current:
            units.append(" ".join(current))
    found = [piece.strip() for unit in units for piece in SENTENCE.split(unit) if piece.strip()]
    if found and found[0][0].islower():
        found = found[1:]
    if found and not WHOLE.search(found[-1]):
        found = found[:-1]
    return found


def extract(question: str, contexts: list[dict[str, Any]]) -> str:
    """The best chunk's whole sentence holding most of the question's words (ties: the earliest),
    and the next one when it is short; empty when no whole sentence holds any of them (the
    question then goes to the model)."""
    from ..llm.hashing import stems

    def words(text: str) -> set[str]:
        return set(stems(text))

    found = sentences(contexts[0]["text"])
    asked = words(question)
    shared = [len(asked & words(s)) for s in found]
    if not any(shared):
        return ""
    scores = [n / (1 + len(s.split()) ** 0.5) for n, s in zip(shared, found, strict=True)]
    best = max(range(len(found)), key=lambda i: (scores[i], -i))
    chosen = found[best : best + 2] if len(found[best].split()) < SHORT else [found[best]]
    return " ".join(chosen)


def fit(answer: str, max_tokens: int, count_tokens) -> tuple[str, str]:
    """``answer`` cut at a word to at most ``max_tokens`` tokens, and its finish reason (``stop``,
    or ``length`` when it was cut), as a generated answer would end."""
    if count_tokens(answer) <= max_tokens:
        return answer, "stop"
    words = answer.split()
    low, high = 0, len(words)  # the most words that fit
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(" ".join(words[:middle])) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    return " ".join(words[:low]), "length"


def load(params: dict[str, Any]) -> Router | None:
    """The router ``routing`` describes, or None when routing is off (or there is no retrieval)."""
    settings = params.get("routing") or {}
    if not settings.get("enabled", False) or not params.get("retrieval"):
        return None
    return Router(int(settings.get("max_words", 12)), float(settings.get("min_score", 0.15)))


def held_out_check(router: Router, results: list[dict[str, Any]], references: list[str]):
    """Each held-out question routed as the service would route it: ``(metrics, routed)`` where
    ``routed`` maps a cheaper route to ``(indexes, its answers)``; the metrics hold each route's
    share and, for the cheaper ones, their answer scores beside the main model's on the same
    questions (``route_<name>_<metric>`` and ``route_<name>_<metric>_main``)."""
    from ..llm import scores

    metrics: dict[str, Any] = {}
    extracted = [
        extract(r["question"], r["context"])
        if router.route(r["question"], r["context"]) == EXTRACTIVE
        else ""
        for r in results
    ]
    chosen = [EXTRACTIVE if answer else MAIN for answer in extracted]  # as the service routes
    for name in ROUTES:
        metrics[f"route_{name}_share"] = round(chosen.count(name) / max(len(chosen), 1), 6)
    routed = {}
    for name in ROUTES[1:]:
        indexes = [i for i, route in enumerate(chosen) if route == name]
        answers = [extracted[i] for i in indexes]
        routed[name] = (indexes, answers)
        metrics[f"route_{name}_questions"] = len(indexes)
        if not indexes:
            continue
        contexts = ["\n\n".join(c["text"] for c in results[i]["context"]) for i in indexes]
        refs = [references[i] for i in indexes]
        own = scores.score(answers, refs, contexts)
        main = scores.score([results[i]["answer"] for i in indexes], refs, contexts)
        for metric, value in own.items():
            metrics[f"route_{name}_{metric}"] = value
            metrics[f"route_{name}_{metric}_main"] = main[metric]
    return metrics, routed


def check_names(kpis) -> None:
    """Every score ``routing.non_inferiority`` names is one a route's answers get."""
    from ..errors import SettingsError

    for metric in kpis.routing.non_inferiority:
        if metric not in ANSWER_SCORES:
            raise SettingsError(
                f"business/kpis.yaml: routing.non_inferiority: {metric!r} is not a score of a route's "
                f"answers; use one of {', '.join(ANSWER_SCORES)}"
            )


def gate_checks(metrics: dict[str, Any], kpis) -> list[dict[str, Any]]:
    """Each cheaper route's answers no worse than the main model's on the questions it takes, by
    ``routing.non_inferiority``'s tolerances (``gates.not_worse``), and on enough of them
    (``routing.min_questions``)."""
    from .. import gates

    check_names(kpis)
    checks = []
    for name in ROUTES[1:]:
        count = metrics.get(f"route_{name}_questions", 0)
        checks.append(
            {
                "metric": f"held-out questions on the {name} route",
                "value": count,
                "limit": f">= {kpis.routing.min_questions}",
                "passed": count >= kpis.routing.min_questions,
                "advice": "too few to judge the route (routing.min_questions); add held-out pairs, or "
                "change routing.max_words or min_score in params.yaml",
            }
        )
        for metric, tolerance in kpis.routing.non_inferiority.items():
            if not count:
                continue
            item = gates.not_worse(
                metric,
                metrics[f"route_{name}_{metric}"],
                metrics[f"route_{name}_{metric}_main"],
                tolerance,
                kpis,
                "the main model on the same questions",
            )
            setting = f"routing.non_inferiority.{metric}"
            checks.append({**item, "metric": f"{name} route: {item['metric']}", "setting": setting})
    return checks

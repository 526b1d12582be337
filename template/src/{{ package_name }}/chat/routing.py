"""Model routing (``routing`` in params.yaml): easy questions answered without the model.

The router sends each request that reaches generation (the input rails passed it, the cache did
not answer it) down one of two routes:

- ``extractive``: an easy question, answered straight from the documents. Easy means: one user
  turn, one answer, no tools and no ``response_format`` (what the cache also asks), at most
  ``routing.max_words`` words, and a best retrieved chunk (after the rails' screen) scoring at
  least ``routing.min_score`` (the index's similarity, 0 to 1). The answer is the chunk's sentence
  that holds most of the question's words, with the next one when it is short. No prompt, no
  generation: it costs nothing, and the output rails still screen it.
- ``main``: everything else, the configured model as without routing.

Every answer says its route (``route`` in the response, the request log and the audit trail;
``chat_route_requests_total{route}`` in /metrics). What an extractive answer saved is what the
main model would have cost for it: the prompt it would have been sent and an answer as long as
the one given (``saved_cost`` in the log, ``chat_saved_cost_total{by="route"}``; ``make drift``
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
SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
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


def extract(question: str, contexts: list[dict[str, Any]]) -> str:
    """The best chunk's sentence holding most of the question's words (ties: the earliest), and
    the next sentence when it is short."""
    from ..llm.hashing import stem
    from ..llm.words import STOPWORDS, WORD

    def words(text: str) -> set[str]:
        return {stem(w) for w in WORD.findall(text.lower()) if w not in STOPWORDS}

    sentences = [s.strip() for s in SENTENCE.split(contexts[0]["text"]) if s.strip()]
    if not sentences:
        return ""
    asked = words(question)
    scores = [len(asked & words(s)) / (1 + len(s.split()) ** 0.5) for s in sentences]
    best = max(range(len(sentences)), key=lambda i: (scores[i], -i))
    chosen = sentences[best : best + 2] if len(sentences[best].split()) < SHORT else [sentences[best]]
    return " ".join(chosen)


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
    chosen = [router.route(r["question"], r["context"]) for r in results]
    for name in ROUTES:
        metrics[f"route_{name}_share"] = round(chosen.count(name) / max(len(chosen), 1), 6)
    routed = {}
    for name in ROUTES[1:]:
        indexes = [i for i, route in enumerate(chosen) if route == name]
        answers = [extract(results[i]["question"], results[i]["context"]) for i in indexes]
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


def gate_checks(metrics: dict[str, Any], kpis) -> list[dict[str, Any]]:
    """Each cheaper route's answers no worse than the main model's on the questions it takes, by
    ``routing.non_inferiority``'s tolerances (``gates.not_worse``), and on enough of them
    (``routing.min_questions``)."""
    from .. import gates
    from ..errors import SettingsError

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
            if count and f"route_{name}_{metric}" not in metrics:
                raise SettingsError(
                    f"business/kpis.yaml: routing.non_inferiority.{metric}: a route's answers are scored by "
                    f"{', '.join(ANSWER_SCORES)} only"
                )
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

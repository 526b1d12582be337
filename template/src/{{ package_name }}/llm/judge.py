"""An LLM judge of the answers (optional, off by default): MLflow's GenAI judges on any
OpenAI-compatible server.

``judge`` in ``params.yaml``: ``enabled``, the server's base URL (``endpoint``, e.g. vLLM, Ollama,
llama.cpp's server or a hosted API; the key, if it needs one, from ``OPENAI_API_KEY``) and the
``model`` it serves. When enabled, ``evaluate`` asks the judge, for each held-out question, whether
the answer is correct and consistent with the reference answer, and reports ``judge_correct``: the
share judged correct, which ``business/kpis.yaml`` may then gate like any metric. The offline
scores (``scores.py``) are computed either way.
"""

from __future__ import annotations

import os
from typing import Any

METRIC = "judge_correct"
INSTRUCTIONS = (
    "You grade answers of a help-desk assistant. The question is in {{ inputs }}, the assistant's "
    "answer in {{ outputs }} and the reference answer in {{ expectations }}. Answer true when the "
    "assistant's answer is correct and agrees with the reference (wording may differ), false when "
    "it is wrong, contradicts the reference, or does not answer."
)


def check_reachable(url: str, timeout: float = 5.0) -> None:
    """A server that is down is named in seconds (MLflow's judge client retries for minutes)."""
    import socket
    from urllib.parse import urlsplit

    from ..errors import GateError

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=timeout).close()
    except OSError as error:
        raise GateError(
            f"judge.endpoint {url} is not reachable ({error}); start it or set judge.enabled: false"
        ) from None


def make(settings: dict[str, Any]):
    """The judge ``settings`` (``params.yaml``: ``judge``) describe."""
    from mlflow.genai.judges import make_judge

    from ..registry import tracking

    check_reachable(settings["endpoint"])  # the judge's own client would retry for minutes
    os.environ.setdefault("OPENAI_API_KEY", "unused")  # servers without keys still get the header
    tracking.offline()  # no model catalog from the network
    return make_judge(
        name="correct",
        instructions=INSTRUCTIONS,
        model=f"openai:/{settings['model']}",
        base_url=settings["endpoint"].rstrip("/") + "/chat/completions",
        feedback_value_type=bool,
    )


def score(results: list[dict[str, Any]], settings: dict[str, Any], judge=None) -> float:
    """The share of ``results`` (``question``, ``answer``, ``reference``) the judge finds correct.
    A verdict the judge could not give counts as incorrect, never as correct."""
    from mlflow.exceptions import MlflowException

    from ..errors import GateError

    judge = judge or make(settings)
    verdicts = []
    for result in results:
        try:
            feedback = judge(
                inputs={"question": result["question"]},
                outputs=result["answer"],
                expectations={"expected_response": result["reference"]},
            )
        except MlflowException as error:
            raise GateError(f"judge at {settings['endpoint']}: {str(error)[:200]}") from None
        if getattr(feedback, "error", None) is not None and feedback.value is None:
            raise GateError(f"judge at {settings['endpoint']}: no verdict ({feedback.error})")
        verdicts.append(feedback.value is True or str(feedback.value).lower() in ("true", "yes"))
    return round(sum(verdicts) / max(len(verdicts), 1), 6)

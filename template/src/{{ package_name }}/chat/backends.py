"""Where the service's answers come from: ``serving.backend`` in ``params.yaml``.

- ``application``: the application the pipeline registered, loaded from ``MODEL_URI`` (or
  ``serving.model_uri``), e.g. ``models:/<name>@champion``: base model, adapter, index, the prompt
  version it was registered with; without a URI, the project's own files (``models/``, ``prompts/``);
- ``upstream``: any OpenAI-compatible server at ``serving.upstream_url`` (``UPSTREAM_URL``
  overrides it; vLLM, TGI, Ollama, llama.cpp's server, a hosted API), asked for
  ``serving.upstream_model``; the key, if it needs one, is ``OPENAI_API_KEY``. The service keeps
  retrieval, the prompt, the guardrails and the metrics; the server only generates. This is how a
  team scales past one machine: vLLM serves the model over GPUs, this service stays in front.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import path, project_root
from ..errors import GateError


@dataclass
class Backend:
    """An assistant (retrieval and prompt) and a generator that streams (``stream``, ``last_tokens``)."""

    assistant: Any
    generate: Any
    count_tokens: Any
    source: str

    def prompt(self, question: str, keep=None) -> tuple[str, list[dict[str, Any]]]:
        """The prompt for ``question`` and the chunks it holds: those retrieved that ``keep``
        (a chunk's verdict, e.g. the rails' screen for instructions hidden in documents) lets in."""
        contexts = self.assistant.contexts([question])[0]
        if keep is not None:
            contexts = [c for c in contexts if keep(c)]
        return self.assistant.prompts([question], [contexts])[0], contexts


def _counter(generate, params: dict[str, Any], root: Path):
    if hasattr(generate, "count_tokens"):
        return generate.count_tokens
    from ..llm.base import TOKENIZER_FILE, token_counter

    if (path(params, "base", root) / TOKENIZER_FILE).is_file():
        return token_counter(params, root)
    return lambda text: max(1, round(len(text.split()) * 1.3))  # no tokenizer: an estimate


def load(params: dict[str, Any], root: Path | None = None) -> Backend:
    from ..llm import assistant

    root = root or project_root()
    serving = params.get("serving") or {}
    if serving.get("backend", "application") == "upstream":
        from ..llm.generate import EndpointGenerator

        url = os.environ.get("UPSTREAM_URL") or serving.get("upstream_url", "")
        if not url:
            raise GateError("serving.upstream_url: empty; give the upstream server's base URL (…/v1)")
        model = serving.get("upstream_model") or params["model"]["base"]
        generate = EndpointGenerator(
            url, model, params["generation"], tools=serving.get("upstream_tools", "constrained")
        )
        helper = assistant.from_project(params, root, generate=False)
        return Backend(helper, generate, _counter(generate, params, root), f"upstream {url} ({model})")
    uri = os.environ.get("MODEL_URI") or serving.get("model_uri", "")
    if uri:
        import mlflow.pyfunc

        from ..registry import tracking

        tracking.connect(params["tracking"])
        try:
            application = mlflow.pyfunc.load_model(uri).unwrap_python_model().assistant
        except Exception as error:  # an unknown alias, a store that is down: say which
            raise GateError(f"cannot load the application {uri}: {type(error).__name__}: {error}") from None
        return Backend(application, application.generate, _counter(application.generate, params, root), uri)
    helper = assistant.from_project(params, root)
    return Backend(helper, helper.generate, _counter(helper.generate, params, root), "the project's files")

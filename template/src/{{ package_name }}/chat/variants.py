"""A/B in production: the champion and a challenger answer side by side (``experiment`` in params.yaml).

The champion is the service as configured (its prompt ``prompts/answer.txt``, its adapter, its
``retrieval.top_k``); the challenger differs in what ``experiment.challenger`` says: another prompt
template (a file of ``prompts/``, registered by the ``prompts`` stage like any other), the adapter
switched off (``adapter: false``: the base model), another ``top_k``. ``experiment.share`` of the
traffic goes to the challenger, by key, so a user stays with one variant for the whole experiment:
the key is the request's ``user`` field (OpenAI's), else its ``safety_identifier`` or
``prompt_cache_key``; a request without any is assigned by its request id. Assignment hashes
``experiment.name`` with the key: a new name draws new groups.

Every answer says which variant wrote it (``variant`` in the response, the request log, the audit
trail and the trace; ``chat_variant_requests_total{variant}`` in /metrics). ``make experiment``
(``monitoring/experiment.py``) reads the outcomes and decides.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHAMPION, CHALLENGER = "champion", "challenger"
KEYS = ("user", "safety_identifier", "prompt_cache_key")  # request fields that name a user, in order


@dataclass
class Variant:
    """What one variant answers with: its assistant (prompt template, retriever, ``top_k``) and
    whether the fine-tuned adapter is on; ``about``: what the lineage and the log record of it."""

    name: str
    assistant: Any
    adapter: bool = True
    about: dict[str, Any] = field(default_factory=dict)

    def prompt(self, question: str, keep=None) -> tuple[str, list[dict[str, Any]]]:
        contexts = self.assistant.contexts([question])[0]
        if keep is not None:
            contexts = [c for c in contexts if keep(c)]
        return self.assistant.prompts([question], [contexts])[0], contexts


class Experiment:
    """The variants and the rule that assigns a request to one."""

    def __init__(self, name: str, share: float, champion: Variant, challenger: Variant | None, generate):
        self.name, self.share = name, share
        self.champion, self.challenger = champion, challenger
        self.generate = generate
        # Switching the adapter off changes the shared model: generation is then one at a time.
        differs = challenger is not None and challenger.adapter != champion.adapter
        self._switch = threading.Lock() if differs else None

    @property
    def running(self) -> bool:
        return self.challenger is not None and self.share > 0

    def assign(self, key: str) -> Variant:
        """The variant of ``key``: a uniform draw from the hash of the experiment's name and the key."""
        if not self.running:
            return self.champion
        digest = hashlib.sha256(f"{self.name}\0{key}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        return self.challenger if draw < self.share else self.champion

    def generating(self, variant: Variant, pieces):
        """``pieces`` (a generator's stream) written by ``variant``'s model: with its adapter
        switched off when it says so, one stream at a time while the variants differ in it."""
        if self._switch is None:
            yield from pieces
            return
        with self._switch:
            base = getattr(self.generate, "base", None)
            off = base(not variant.adapter) if base is not None else contextlib.nullcontext()
            with off:
                yield from pieces


def key_of(request_fields: dict[str, Any]) -> str:
    """Who asks, by the first of ``KEYS`` the request carries ("" when none does)."""
    for name in KEYS:
        value = request_fields.get(name)
        if isinstance(value, str) and value.strip():
            return f"{name}:{value.strip()}"
    return ""


def load(params: dict[str, Any], backend, root: Path) -> Experiment:
    """The experiment ``params`` describe on ``backend`` (the champion: the backend as it is)."""
    from ..errors import GateError
    from ..llm import prompts as prompt_templates
    from ..llm.assistant import Assistant

    settings = params.get("experiment") or {}
    base = backend.assistant
    champion = Variant(CHAMPION, base, True, {"top_k": base.top_k, "adapter": True})
    share = float(settings.get("share", 0.0))
    spec = settings.get("challenger") or {}
    if not spec or share <= 0:
        return Experiment(str(settings.get("name", "")), 0.0, champion, None, backend.generate)
    template = base.template
    prompt = spec.get("prompt") or ""
    if prompt:
        file = root / prompt
        if not file.is_file():
            raise GateError(f"experiment.challenger.prompt: {prompt} does not exist (a file of prompts/)")
        template = file.read_text(encoding="utf-8")
        missing = prompt_templates.required(params) - prompt_templates.variables(template)
        if missing:
            raise GateError(
                f"experiment.challenger.prompt: {prompt} does not use "
                + ", ".join("{{" + v + "}}" for v in sorted(missing))
            )
    top_k = int(spec.get("top_k") or base.top_k)
    adapter = bool(spec.get("adapter", True))
    if not adapter and not getattr(backend.generate, "tuned", False):
        raise GateError(
            "experiment.challenger.adapter: false, but the served model has no adapter to switch off"
        )
    assistant = Assistant(template, base.generate, base.retriever, top_k)
    about = {"top_k": top_k, "adapter": adapter, "prompt_file": prompt or "prompts/answer.txt"}
    challenger = Variant(CHALLENGER, assistant, adapter, about)
    return Experiment(str(settings["name"]), share, champion, challenger, backend.generate)

"""The rails: what the policy (``guardrails/policy.yaml``) does to a question and to an answer.

Input rails, in order: ``length`` (characters) and ``tokens`` (the base model's tokenizer) block a
request that is too long; ``injection`` screens prompt injections and jailbreaks with the policy's
patterns (on whitespace-normalised text); ``pii`` redacts personal data (or blocks) before the
question reaches retrieval, the model or the request log. Output rails: ``pii_leak`` redacts
personal data in the answer; ``grounding`` flags (or replaces) an answer whose content words are
mostly not in its context (the evaluation's faithfulness proxy); ``format`` cuts an answer past
``max_chars`` and replaces one that matches a blocked pattern.

Every rule that fires is a ``Trigger`` (rule, action, and what fired: a pattern number or entity
names, never the text itself), which the service counts by rule and logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Trigger:
    rule: str
    action: str
    detail: str = ""


@dataclass
class Screened:
    """A text after the rails: ``text`` is what goes on (redacted, cut or replaced); ``blocked`` the
    rule that refused it (None: it goes on)."""

    text: str
    triggers: list[Trigger] = field(default_factory=list)
    blocked: str | None = None

    @property
    def rules(self) -> list[str]:
        return [t.rule for t in self.triggers]


SPACES = re.compile(r"\s+")
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))  # zero-width characters


def normalise(text: str) -> str:
    """What the injection patterns see: no zero-width characters, single spaces."""
    return SPACES.sub(" ", text.translate(INVISIBLE)).strip()


class Rails:
    """The policy's rails, compiled once: ``check_input(question)``, ``check_output(answer, context)``.
    ``count_tokens`` counts a text's tokens (default: the base model's tokenizer, read when needed)."""

    def __init__(self, policy: dict[str, Any], count_tokens=None):
        self.policy = policy
        self.input, self.output = policy["input"], policy["output"]
        injection = self.input["injection"]
        self._injection = [re.compile(p, re.IGNORECASE) for p in injection["patterns"]]
        self._blocked = [re.compile(p, re.IGNORECASE) for p in self.output["blocked_patterns"]]
        self.count_tokens = count_tokens

    def check_input(self, text: str) -> Screened:
        limits = self.input
        if len(text) > limits["max_chars"]:
            return self._block(text, "length", f"{len(text)} characters > {limits['max_chars']}")
        if self.count_tokens is not None:
            tokens = self.count_tokens(text)
            if tokens > limits["max_tokens"]:
                return self._block(text, "tokens", f"{tokens} tokens > {limits['max_tokens']}")
        screened = Screened(text)
        injection = limits["injection"]
        if injection["action"] != "off":
            seen = normalise(text)
            hits = [str(n) for n, pattern in enumerate(self._injection) if pattern.search(seen)]
            if hits:
                found = Trigger("injection", injection["action"], "patterns " + ",".join(hits))
                screened.triggers.append(found)
                if injection["action"] == "block":
                    screened.blocked = "injection"
                    return screened
        return self._pii(screened, limits.get("pii"), "pii")

    def check_output(self, answer: str, context: str) -> Screened:
        out = self.output
        screened = self._pii(Screened(answer), out.get("pii"), "pii_leak")
        if screened.blocked:
            return Screened(out["fallback"], screened.triggers, screened.blocked)
        grounding = out["grounding"]
        if grounding["action"] != "off" and context:
            from ..llm.scores import grounded_share

            share = grounded_share(screened.text, context)
            if share < grounding["min_share"]:
                screened.triggers.append(Trigger("grounding", grounding["action"], f"share {share:.2f}"))
                if grounding["action"] == "replace":
                    screened.text = out["fallback"]
        if any(pattern.search(screened.text) for pattern in self._blocked):
            screened.triggers.append(Trigger("format", "replace", "blocked pattern"))
            screened.text = out["fallback"]
        elif len(screened.text) > out["max_chars"]:
            screened.triggers.append(Trigger("format", "cut", f"{len(screened.text)} characters"))
            screened.text = screened.text[: out["max_chars"]]
        return screened

    def screen_piece(self, text: str) -> Screened:
        """A piece of a streamed answer through the output rail for personal data."""
        return self._pii(Screened(text), self.output.get("pii"), "pii_leak")

    def blocked_message(self, rule: str) -> str:
        return self.policy["messages"]["blocked"].replace("{rule}", rule)

    @staticmethod
    def _block(text: str, rule: str, detail: str) -> Screened:
        return Screened(text, [Trigger(rule, "block", detail)], rule)

    @staticmethod
    def _pii(screened: Screened, settings: dict[str, Any] | None, rule: str) -> Screened:
        if not settings or settings["action"] == "off":
            return screened
        from ..corpus.pii import find, redact

        found = find(screened.text, settings["entities"], settings["min_score"], settings["model"])
        if not found:
            return screened
        kinds = sorted({f.entity for f in found})
        screened.triggers.append(Trigger(rule, settings["action"], ",".join(kinds)))
        if settings["action"] == "block":
            screened.blocked = rule
        elif settings["action"] == "redact":
            screened.text = redact(screened.text, found)
        return screened

"""The rails: what the policy (``guardrails/policy.yaml``) does to a question and to an answer.

Input rails, in order: ``length`` (characters) and ``tokens`` (the base model's tokenizer) block a
request that is too long; ``injection`` screens prompt injections and jailbreaks with the policy's
patterns on every view of the text (as a reader sees it, and what it hides: tag characters, decoded
base64/base32/hex/URL runs, a string assembled from quoted pieces, ROT13 and reversed text when it
is not plain English, leetspeak: ``reveal.views``), then with the learned detector
(``detector.py``: a classifier trained on the project's sets) on the same views; ``obfuscation`` blocks text that hides content
from a reader (tag characters, look-alike letters of other scripts inside words, invisible or
control characters, stacked marks, encoded runs, gibberish: ``reveal.signs``); ``pii`` redacts
personal data (or blocks) before the question reaches retrieval, the model or the request log. ``retrieved`` screens each retrieved chunk for the injection patterns
before it enters the prompt (instructions hidden in documents) and drops or flags it. Output rails: ``pii_leak`` redacts
personal data in the answer; ``canary`` replaces an answer that holds the canary, a word the service
writes at the top of every prompt it builds (``mark``) and a model repeats only when it
reads its prompt out; ``grounding`` flags (or replaces) an answer whose content words are
mostly not in its context (the evaluation's faithfulness proxy); ``format`` cuts an answer past
``max_chars`` and replaces one that matches a blocked pattern.

Every rule that fires is a ``Trigger`` (rule, action, and what fired: a pattern number or entity
names, never the text itself), which the service counts by rule and logs.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from . import reveal


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
    grounded: float | None = None  # the answer's share of words its context holds (output rails)

    @property
    def rules(self) -> list[str]:
        return [t.rule for t in self.triggers]


LEADING = re.compile(r"\\b(?:\(([a-z0-9 |]+)\)|([a-z0-9]+)(?=\\b|\\s| ))")


def needles(pattern: str) -> frozenset[str] | None:
    """Words one of which must be in a text for ``pattern`` to match it: the words each of its
    branches starts with (``\\b(word|word ...)`` or ``\\bword``), so that a pattern runs only on
    texts that hold one. None: a branch starts otherwise, and the pattern always runs."""
    words: set[str] = set()
    for branch in _branches(pattern):
        lead = LEADING.match(branch)
        if lead is None:
            return None
        options = lead.group(1).split("|") if lead.group(1) else [lead.group(2)]
        words.update(option.split()[0] for option in options if option.strip())
    return frozenset(words)


def _branches(pattern: str) -> list[str]:
    """``pattern`` split at its top-level ``|``."""
    branches, start, depth, escaped, in_class = [], 0, 0, False, False
    for at, char in enumerate(pattern):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            branches.append(pattern[start:at])
            start = at + 1
    return [*branches, pattern[start:]]


CANARY_VARIABLE = "GUARDRAILS_CANARY"


def canary(policy: dict[str, Any]) -> str:
    """The word the service writes at the top of every prompt: ``GUARDRAILS_CANARY`` when it is
    set (a deployment's secret, so that not even the repository's readers know it), else one drawn
    from the policy. The same on every request and every restart: a prompt prefix an engine's cache
    keeps, and answers that a restart does not change."""
    chosen = os.environ.get(CANARY_VARIABLE, "").strip()
    if chosen:
        return chosen
    digest = hashlib.sha256(json.dumps(policy, sort_keys=True).encode()).hexdigest()
    return f"c{int(digest[0], 16) % 10}{digest[1:15]}"  # a digit in it: a stream holds it back whole


class Rails:
    """The policy's rails, compiled once: ``check_input(question)``, ``check_output(answer, context)``.
    ``count_tokens`` counts a text's tokens (default: the base model's tokenizer, read when needed)."""

    def __init__(self, policy: dict[str, Any], count_tokens=None, detector=None):
        self.policy = policy
        self.input, self.output = policy["input"], policy["output"]
        injection = self.input["injection"]
        self._injection = [(needles(p), re.compile(p, re.IGNORECASE)) for p in injection["patterns"]]
        learned = injection["detector"]
        self.min_score = learned["min_score"] if learned["action"] == "screen" else None
        self._detector = detector  # None: the project's own, trained when a question first needs it
        self._blocked = [re.compile(p, re.IGNORECASE) for p in self.output["blocked_patterns"]]
        self.count_tokens = count_tokens
        # The index's chunks come back again and again: each is screened once.
        self._chunk_verdicts = functools.lru_cache(maxsize=8192)(self._injected)
        self.canary = canary(policy) if self.output["canary"]["action"] != "off" else ""

    def mark(self, prompt: str) -> str:
        """The prompt with the canary on its first line, as a comment a reader of the answer never
        needs (no canary: as it is)."""
        return f"<!-- {self.canary} -->\n{prompt}" if self.canary else prompt

    def leaked(self, text: str) -> bool:
        """``text`` holds the canary: the model read its prompt out."""
        return bool(self.canary) and self.canary in text

    def check_input(self, text: str, learned: bool = True) -> Screened:
        """``text`` through the input rails; ``learned=False`` leaves the detector out (it learned
        users' requests: a system or assistant turn of a conversation meets the patterns only)."""
        limits = self.input
        if len(text) > limits["max_chars"]:
            return self._block(text, "length", f"{len(text)} characters > {limits['max_chars']}")
        if self.count_tokens is not None:
            tokens = self.count_tokens(text)
            if tokens > limits["max_tokens"]:
                return self._block(text, "tokens", f"{tokens} tokens > {limits['max_tokens']}")
        screened = Screened(text)
        question = self._question if learned else self._injected
        for rule, detail in (("injection", question), ("obfuscation", self._obfuscation)):
            action = limits[rule]["action"]
            found = detail(text) if action != "off" else None
            if found:
                screened.triggers.append(Trigger(rule, action, found))
                if action == "block":
                    screened.blocked = rule
                    return screened
        return self._pii(screened, limits.get("pii"), "pii")

    @staticmethod
    def _obfuscation(text: str) -> str | None:
        return ", ".join(reveal.signs(text)) or None

    @property
    def detector(self):
        """The learned screen (``detector.py``; None when the policy turns it off)."""
        if self.min_score is None:
            return None
        if self._detector is None:
            from ..config import project_root
            from .detector import for_project

            self._detector = for_project(project_root())
        return self._detector

    def with_detector(self, detector) -> Rails:
        """These rails with another learned screen (the gate's held-out ones)."""
        other = copy.copy(self)
        other._detector = detector
        return other

    def patterns_only(self) -> Rails:
        """These rails without the learned screen, as ``detector.action: off`` makes them."""
        other = copy.copy(self)
        other.min_score, other._detector = None, None
        return other

    def _question(self, text: str) -> str | None:
        """The injection rule on a question: the patterns, then the learned screen on every view."""
        views = reveal.views(text)
        found = self._injected(text, views)
        if found or self.detector is None:
            return found
        score, view = max((self.detector.score(seen), view) for view, seen in views)
        if score >= self.min_score:
            return f"detector {score:.2f}" + ("" if view == "text" else f" in {view}")
        return None

    def _injected(self, text: str, views: list[tuple[str, str]] | None = None) -> str | None:
        """The patterns that match a view of ``text``, and the view (None: none matches)."""
        for view, seen in views if views is not None else reveal.views(text):
            words = set(reveal.WORDS.findall(seen.lower()))
            hits = [
                str(n)
                for n, (first, pattern) in enumerate(self._injection)
                if (first is None or not first.isdisjoint(words)) and pattern.search(seen)
            ]
            if hits:
                return "patterns " + ",".join(hits) + ("" if view == "text" else f" in {view}")
        return None

    def check_retrieved(self, text: str, chunk: str = "") -> Screened:
        """A retrieved chunk before it enters the prompt: a document that carries instructions
        for the model (indirect injection) is dropped (``retrieved.action: drop``) or flagged."""
        action = self.input["retrieved"]["action"]
        found = self._chunk_verdicts(text) if action != "off" else None
        if not found:
            return Screened(text)
        detail = f"{chunk}: {found}" if chunk else found
        return Screened(
            text, [Trigger("retrieved", action, detail)], "retrieved" if action == "drop" else None
        )

    def check_output(self, answer: str, context: str) -> Screened:
        out = self.output
        screened = self._pii(Screened(answer), out.get("pii"), "pii_leak")
        if screened.blocked:
            return Screened(out["fallback"], screened.triggers, screened.blocked)
        if self.leaked(screened.text):
            action = out["canary"]["action"]
            screened.triggers.append(Trigger("canary", action, "the prompt's canary"))
            if action == "replace":
                return Screened(out["fallback"], screened.triggers)
        grounding = out["grounding"]
        if grounding["action"] != "off" and context:
            from ..llm.scores import grounded_share

            share = screened.grounded = grounded_share(screened.text, context)
            if share < grounding["min_share"]:
                screened.triggers.append(Trigger("grounding", grounding["action"], f"share {share:.2f}"))
                if grounding["action"] == "replace":
                    screened.text = out["fallback"]
        if self.blocked_in(screened.text):
            screened.triggers.append(Trigger("format", "replace", "blocked pattern"))
            screened.text = out["fallback"]
        elif len(screened.text) > out["max_chars"]:
            screened.triggers.append(Trigger("format", "cut", f"{len(screened.text)} characters"))
            screened.text = screened.text[: out["max_chars"]]
        return screened

    def stream(self) -> StreamScreen:
        """A screen for one streamed answer (``StreamScreen``)."""
        return StreamScreen(self)

    def blocked_in(self, text: str) -> bool:
        """``text`` matches one of the output's blocked patterns."""
        return any(pattern.search(text) for pattern in self._blocked)

    def scrub(self, text: str) -> str:
        """``text`` with the personal data the input rail covers replaced, whatever its action: what
        a log or a trace may hold of a blocked question."""
        settings = self.input.get("pii")
        if not settings or settings["action"] == "off":
            return text
        return self._pii(Screened(text), {**settings, "action": "redact"}, "pii").text

    def blocked_message(self, rule: str) -> str:
        return self.policy["messages"]["blocked"].replace("{rule}", rule)

    @staticmethod
    def _block(text: str, rule: str, detail: str) -> Screened:
        return Screened(text, [Trigger(rule, "block", detail)], rule)

    def pii_in(self, text: str) -> list:
        """The personal data the output rail acts on in ``text`` (none when it is off)."""
        settings = self.output.get("pii")
        if not settings or settings["action"] == "off":
            return []
        from ..corpus.pii import find

        return find(text, settings["entities"], settings["min_score"], settings["model"])

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


MAY_BE_PART_OF_A_VALUE = re.compile(r"[0-9@:+]")
PIECES = re.compile(r"\S+|\s+")
CONTEXT = 80  # characters of released text the judge of a value sees before it ("call me on ...")


class StreamScreen:
    """The output rails on a streamed answer, with a bounded hold-back instead of whole sentences.

    ``feed(piece)`` returns the text that may go out now: every finished word, except a trailing run
    of words that may still become personal data (a word with a digit, "@", ":" or "+", and the word
    being written), held back at most ``output.stream_hold_chars`` characters. What goes out is
    screened first with its held-back tail and the released text before it as context: personal
    data is redacted (the cut moves past a value that reaches into the tail) or, with ``block``, ends
    the stream; a blocked pattern or the prompt's canary ends it too (``stopped``: ``content_filter``); past
    ``max_chars`` it is cut (``stopped``: ``length``). ``close()`` releases the rest."""

    def __init__(self, rails: Rails):
        self.rails = rails
        self.hold = int(rails.output.get("stream_hold_chars", 64))
        self.limit = int(rails.output["max_chars"])
        self.sent, self.held = "", ""
        self.triggers: list[Trigger] = []
        self.stopped: str | None = None

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        self.held += piece
        return self._release(self._tail_start())

    def close(self) -> str:
        return "" if self.stopped else self._release(len(self.held))

    def _tail_start(self) -> int:
        """Where the held-back tail begins in ``held``: the word being written, and the run of words
        before it that may be part of a value (a finished word too, when it may go on: "4111 ")."""
        parts = [(m.start(), m.group()) for m in PIECES.finditer(self.held)]
        start = len(self.held)
        finished = bool(parts) and parts[-1][1].isspace()
        if finished:
            parts.pop()
        if parts and (not finished or MAY_BE_PART_OF_A_VALUE.search(parts[-1][1])):
            start = parts.pop()[0]
            while len(parts) >= 2 and MAY_BE_PART_OF_A_VALUE.search(parts[-2][1]):
                parts.pop()
                start = parts.pop()[0]
        return max(start, len(self.held) - self.hold)

    def _release(self, cut: int) -> str:
        if cut <= 0:
            return ""
        context = self.sent[-CONTEXT:]
        text = context + self.held
        offset = len(context)
        settings = self.rails.output.get("pii") or {}
        found = [f for f in self.rails.pii_in(text) if f.end > offset and f.start < offset + cut]
        if found:
            cut = max(cut, *(f.end - offset for f in found))
            self.triggers.append(
                Trigger("pii_leak", settings["action"], ",".join(sorted({f.entity for f in found})))
            )
            if settings["action"] == "block":
                return self._stop("content_filter")
        out = self.held[:cut]
        if found and settings["action"] == "redact":
            from ..corpus.pii import Finding, redact

            out = redact(
                out, [Finding(f.entity, max(f.start - offset, 0), f.end - offset, f.score) for f in found]
            )
        if self.rails.blocked_in(self.sent[-200:] + out):
            self.triggers.append(Trigger("format", "stop", "blocked pattern"))
            return self._stop("content_filter")
        if self.rails.leaked(self.sent[-40:] + self.held):
            action = self.rails.output["canary"]["action"]
            if not any(t.rule == "canary" for t in self.triggers):
                self.triggers.append(Trigger("canary", action, "the prompt's canary"))
            if action == "replace":
                return self._stop("content_filter")
        self.held = self.held[cut:]
        if len(self.sent) + len(out) > self.limit:
            out = out[: max(self.limit - len(self.sent), 0)]
            self.triggers.append(Trigger("format", "cut", f"over {self.limit} characters"))
            self.stopped = "length"
        self.sent += out
        return out

    def _stop(self, reason: str) -> str:
        self.stopped, self.held = reason, ""
        return ""

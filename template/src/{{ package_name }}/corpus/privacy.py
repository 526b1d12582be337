"""Data privacy governance for the text data: what ``privacy`` in ``params.yaml`` decides.

- ``privacy.entities``: per kind of personal data, ``block`` (the ``validate`` stage stops the
  pipeline) or ``redact`` (``collect`` replaces each value by ``<ENTITY>``, so no model, index or
  log ever sees it). A list of names means ``block`` for each.
- ``privacy.allow``: a reviewed allow-list file, one value per line (``#`` comments): values a
  person has checked are not personal data (a published support address, an example in the
  documentation). Compared without case, spaces and separators.
- Candidates are judged in context first (``pii.not_personal``: reserved example domains, role
  mailboxes, documentation and private addresses, numbers inside decimals and versions, ...).

Every candidate goes to the report (entity, where, line, masked value, verdict), never its value.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK, REDACT = "block", "redact"


@dataclass(frozen=True)
class Policy:
    actions: dict[str, str]
    min_score: float = 0.4
    allowed: frozenset[str] = field(default_factory=frozenset)
    allow_file: str = ""

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(self.actions)

    def redacts(self) -> bool:
        return REDACT in self.actions.values()


def read_allow_list(file: Path) -> frozenset[str]:
    from .pii import normalised

    if not file.is_file():
        return frozenset()
    values = (line.split("#", 1)[0].strip() for line in file.read_text(encoding="utf-8").splitlines())
    return frozenset(normalised(value) for value in values if value)


def policy(params: dict[str, Any], root: Path) -> Policy:
    """The privacy policy of ``params.yaml`` (checked by ``settings.py``), the allow-list read."""
    settings = params.get("privacy") or {}
    entities = settings.get("entities") or ()
    actions = dict(entities) if isinstance(entities, dict) else dict.fromkeys(entities, BLOCK)
    allow = settings.get("allow") or ""
    allowed = read_allow_list(root / allow) if allow else frozenset()
    return Policy(actions, float(settings.get("min_score", 0.4)), allowed, allow)


def review(text: str, rules: Policy, entities: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """Every candidate in ``text`` with its verdict: ``block`` or ``redact`` (its action),
    ``allowed`` (on the allow-list) or ``not personal: <why>``."""
    from . import pii

    return judge(text, pii.scan(text, entities or rules.entities, rules.min_score), rules)


def judge(text: str, scanned, rules: Policy) -> list[dict[str, Any]]:
    """The verdict on each ``(finding, reason it is not personal or None)`` that ``pii.scan``
    found in ``text``: the context's reason first, then the allow-list, then the entity's action."""
    from .pii import normalised

    found = []
    for finding, why in scanned:
        value = text[finding.start : finding.end]
        if why is not None:
            verdict = f"not personal: {why}"
        elif normalised(value) in rules.allowed:
            verdict = "allowed"
        else:
            verdict = rules.actions.get(finding.entity, BLOCK)
        found.append(
            {
                "entity": finding.entity,
                "line": text.count("\n", 0, finding.start) + 1,
                "masked": finding.masked(text),
                "verdict": verdict,
                "_finding": finding,
            }
        )
    return found


def redact(text: str, rules: Policy) -> tuple[str, dict[str, int]]:
    """``text`` with the values of the entities to redact replaced by ``<ENTITY>``; the counts."""
    from .pii import redact as replace

    chosen = tuple(e for e, action in rules.actions.items() if action == REDACT)
    if not chosen or not text:
        return text, {}
    hits = [f for f in review(text, rules, chosen) if f["verdict"] == REDACT]
    if not hits:
        return text, {}
    return replace(text, [f["_finding"] for f in hits]), dict(Counter(f["entity"] for f in hits))


def counts(findings: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per entity, how many candidates got each verdict (``not personal`` reasons counted together)."""
    table: dict[str, Counter] = {}
    for item in findings:
        verdict = "not personal" if item["verdict"].startswith("not personal") else item["verdict"]
        table.setdefault(item["entity"], Counter())[verdict] += 1
    return {entity: dict(sorted(c.items())) for entity, c in sorted(table.items())}


def remedy(rules: Policy, entities: list[str]) -> str:
    """What the user can do about blocked values, naming the settings that decide."""
    allow = rules.allow_file or "a file named in privacy.allow (params.yaml)"
    redacting = ", ".join(f"privacy.entities.{e}: redact" for e in entities)
    return (
        f"Not personal data (a published address, an example)? Add the value, reviewed, to {allow}. "
        f"Personal data the model may see only masked? Set {redacting} in params.yaml. "
        "Otherwise remove it from the data."
    )

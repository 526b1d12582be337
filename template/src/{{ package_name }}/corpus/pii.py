"""Personal data in text, found offline: Presidio's pattern and checksum recognizers.

Presidio's default set-up downloads a spaCy model; here its NLP engine is a blank spaCy pipeline
made in-process, so the recognizers that need no named-entity model work with no download: e-mail
addresses, phone numbers, credit-card numbers (Luhn-checked), IBANs (checksum), IP addresses,
US social security numbers and others (``privacy.entities`` in ``params.yaml`` picks them). Names
of people and places need an NER model: a spaCy pipeline installed by the project, chosen by name
(the guardrails policy's ``pii.model``).

One implementation for the whole project: the data contract (``validate``) uses it on training
data, and the service's input and output rails use it on requests and answers.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN")
# Each default entity holds a digit, an "@" (e-mail) or a ":" (IPv6): a text with none of them is
# answered without the analyzer (a third of a millisecond per call, twice per chat request).
MAY_HOLD_DEFAULT = re.compile(r"[0-9@:]")


@dataclass(frozen=True)
class Finding:
    entity: str
    start: int
    end: int
    score: float

    def masked(self, text: str) -> str:
        """The finding with most of it hidden: enough to locate it, not enough to leak it."""
        value = text[self.start : self.end]
        keep = 2 if len(value) > 6 else 1
        return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]


@contextlib.contextmanager
def _without(*names: str):
    """Imports of ``names`` fail in this block (modules already loaded stay as they are). spaCy's
    thinc and Presidio's NER recognizers import torch and transformers whenever they are installed:
    15 s or more that the pattern recognizers never use."""
    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]


@lru_cache(maxsize=2)
def _analyzer(model: str = "blank"):
    with _without("torch", "transformers"):
        import spacy
        import tldextract
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import SpacyNlpEngine

    # The e-mail recognizer asks tldextract for the public-suffix list: use the bundled copy,
    # never the network.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())

    class BlankEngine(SpacyNlpEngine):
        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en") if model == "blank" else spacy.load(model)}

    engine = BlankEngine(models=[{"lang_code": "en", "model_name": model}])
    engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    quiet = logging.getLogger("presidio-analyzer")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # not a warning per recognizer of another language it leaves out
    try:
        registry.load_predefined_recognizers(nlp_engine=engine, languages=["en"])
    finally:
        quiet.setLevel(level)
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])


def find(text: str, entities=DEFAULT_ENTITIES, min_score: float = 0.4, model: str = "blank") -> list[Finding]:
    """Personal data in ``text``: the ``entities`` found with a score of at least ``min_score``.
    ``model``: ``blank`` (offline, no download), or an installed spaCy pipeline with named-entity
    recognition (e.g. ``en_core_web_sm``) that adds PERSON, LOCATION and the like."""
    if not text or not text.strip():
        return []
    if model == "blank" and set(entities) <= set(DEFAULT_ENTITIES) and not MAY_HOLD_DEFAULT.search(text):
        return []
    results = _analyzer(model).analyze(text=text, language="en", entities=list(entities))
    found = [Finding(r.entity_type, r.start, r.end, float(r.score)) for r in results if r.score >= min_score]
    return sorted(found, key=lambda f: (f.start, -f.score))

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


@lru_cache(maxsize=8)
def _pattern_recognizers(entities: tuple[str, ...]):
    """The pattern and checksum recognizers of ``entities``: with no NER model, calling them
    directly gives what the analyzer gives, without its spaCy pass over the text (2.3x faster on
    documentation pages)."""
    registry = _analyzer("blank").registry
    chosen = registry.get_recognizers(language="en", entities=list(entities))
    return [r for r in chosen if type(r).__name__ != "SpacyRecognizer"]


def _raw(text: str, entities: tuple[str, ...], min_score: float, model: str) -> list[Finding]:
    if model == "blank":
        from presidio_analyzer import EntityRecognizer

        results = []
        for recognizer in _pattern_recognizers(entities):
            results += recognizer.analyze(text=text, entities=list(entities), nlp_artifacts=None) or []
        results = EntityRecognizer.remove_duplicates(results)
    else:
        results = _analyzer(model).analyze(text=text, language="en", entities=list(entities))
    found = [Finding(r.entity_type, r.start, r.end, float(r.score)) for r in results if r.score >= min_score]
    return sorted(found, key=lambda f: (f.start, -f.score))


def scan(
    text: str, entities=DEFAULT_ENTITIES, min_score: float = 0.4, model: str = "blank"
) -> list[tuple[Finding, str | None]]:
    """Every candidate in ``text`` with the reason it is not personal data (None: it is).
    ``model``: ``blank`` (offline, no download), or an installed spaCy pipeline with named-entity
    recognition (e.g. ``en_core_web_sm``) that adds PERSON, LOCATION and the like."""
    if not text or not text.strip():
        return []
    entities = tuple(entities)
    if model == "blank" and set(entities) <= set(DEFAULT_ENTITIES) and not MAY_HOLD_DEFAULT.search(text):
        return []
    return [(f, not_personal(f, text)) for f in _raw(text, entities, min_score, model)]


def find(text: str, entities=DEFAULT_ENTITIES, min_score: float = 0.4, model: str = "blank") -> list[Finding]:
    """Personal data in ``text``: the ``entities`` found with a score of at least ``min_score`` that
    their context does not show to be something else (``not_personal``)."""
    return [f for f, reason in scan(text, entities, min_score, model) if reason is None]


# ---------------------------------------------------------------------------------------- context
# Reserved for documentation and tests, never anyone's mailbox: RFC 2606 and RFC 6761.
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
RESERVED_TLDS = ("example", "test", "invalid", "localhost", "local")
# Mailboxes of roles and services, not of people: RFC 2142, and the usual no-reply senders.
ROLE_MAILBOXES = frozenset(
    [
        "info",
        "marketing",
        "sales",
        "support",
        "abuse",
        "noc",
        "security",
        "postmaster",
        "hostmaster",
        "usenet",
        "news",
        "webmaster",
        "www",
        "uucp",
        "ftp",
        "noreply",
        "no-reply",
        "donotreply",
        "do-not-reply",
    ]
)
# Issuer identification numbers and lengths of the card networks (ISO/IEC 7812): Visa, Mastercard,
# American Express, Discover, Diners Club, JCB, UnionPay, Maestro.
CARD_NETWORKS = (
    (r"4", (13, 16, 19)),
    (r"5[1-5]|2(2[2-9]|[3-6]\d|7[01]|720)", (16,)),
    (r"3[47]", (15,)),
    (r"6011|64[4-9]|65", (16, 17, 18, 19)),
    (r"30[0-5]|36|3[89]", (14, 15, 16, 17, 18, 19)),
    (r"35(2[89]|[3-8]\d)", (16, 17, 18, 19)),
    (r"62", (16, 17, 18, 19)),
    (r"5[06-8]|6\d", tuple(range(12, 20))),
)
PHONE_WORDS = re.compile(
    r"\b(phone|call|tel|telephone|mobile|cell|fax|sms|whatsapp|ring|dial|contact)\b", re.I
)


def _in_longer_number(text: str, start: int, end: int) -> bool:
    """The digits at ``start:end`` are part of a longer number: a decimal (``0.666…``), a version
    (``3.11.7``), a time stamp or a longer run of digits."""
    before, after = text[max(start - 2, 0) : start], text[end : end + 2]
    return bool(re.search(r"\d[.:]?$", before) or re.match(r"[.:]?\d", after))


def _email(value: str) -> str | None:
    local, _, domain = value.lower().rpartition("@")
    if domain in RESERVED_DOMAINS or domain.endswith(tuple("." + d for d in RESERVED_DOMAINS)):
        return "a reserved example domain (RFC 2606)"
    if domain.rsplit(".", 1)[-1] in RESERVED_TLDS:
        return "a reserved top-level domain (RFC 2606, RFC 6761)"
    if local in ROLE_MAILBOXES:
        return "a role mailbox, not a person's (RFC 2142)"
    if sum(c.isdigit() for c in local) >= 10 and not re.search(r"[a-z]{3}", local.split(".")[0]):
        return "a message or object identifier, not a mailbox"
    return None


VERSION_BEFORE = re.compile(r"(/|\b(v|version|versions|release|section|sections|rfc|§)\s*)$", re.I)


def _ip(value: str, text: str, start: int, end: int) -> str | None:
    import ipaddress

    if "." in value and (
        _in_longer_number(text, start, end) or VERSION_BEFORE.search(text[max(start - 12, 0) : start])
    ):
        return "part of a longer dotted number, a version or a section number"
    try:
        address = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        try:
            address = ipaddress.ip_network(value.strip("[]"), strict=False).network_address
        except ValueError:
            return None
    if address.is_global:
        return None
    documentation = [
        ipaddress.ip_network(n)
        for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
    ]
    if any(address in net for net in documentation if net.version == address.version):
        return "a documentation address (RFC 5737, RFC 3849)"
    if address.is_loopback:
        return "a loopback address"
    if address.is_private:
        return "a private or special-purpose address, not a public one (RFC 1918, RFC 6890)"
    return "a special-purpose address, not a public one (RFC 6890)"


def _card(value: str, text: str, start: int, end: int) -> str | None:
    if _in_longer_number(text, start, end):
        return "part of a longer number or a decimal"
    digits = re.sub(r"\D", "", value)
    for prefix, lengths in CARD_NETWORKS:
        if re.match(prefix, digits) and len(digits) in lengths:
            return None
    return "no card network issues such a number (ISO/IEC 7812 prefix and length)"


def _phone(value: str, text: str, start: int, end: int) -> str | None:
    if _in_longer_number(text, start, end):
        return "part of a longer number, a decimal or a version"
    if re.fullmatch(r"\d+\.\d+", value) or re.search(r"\d\.\d{1,2}$", value):
        return "a decimal number or an amount"
    groups = re.findall(r"\d+", value)
    dotted = re.findall(r"\d+(?:\.\d+)+", value)
    if any(len(g) == 1 or len(g) > 4 for d in dotted for g in d.split(".")):
        return "a version, a decimal or an address, not a phone number"
    if re.search(r"(^|\D)555\D?01\d\d$", value):
        return "a fictional number (NANP 555-0100 to 555-0199)"
    if len(groups) > 3 and sum(len(g) == 1 for g in groups) * 2 > len(groups):
        return "a list of small numbers"
    bare = len(groups) == 1 and not value.lstrip().startswith("+")
    if bare and not PHONE_WORDS.search(text[max(start - 40, 0) : start]):
        return "a bare run of digits with no phone formatting or phone word before it"
    return None


def not_personal(finding: Finding, text: str) -> str | None:
    """Why the context shows ``finding`` is not personal data, or None. The rules (each names the
    standard it applies): reserved example domains and role mailboxes; documentation, private and
    loopback addresses; card numbers no network issues, or digits inside a longer number; phone
    numbers that are versions, decimals, lists of small numbers or bare digit runs with nothing
    that says phone."""
    value = text[finding.start : finding.end]
    if finding.entity == "EMAIL_ADDRESS":
        return _email(value)
    if finding.entity == "IP_ADDRESS":
        return _ip(value, text, finding.start, finding.end)
    if finding.entity == "CREDIT_CARD":
        return _card(value, text, finding.start, finding.end)
    if finding.entity == "PHONE_NUMBER":
        return _phone(value, text, finding.start, finding.end)
    return None


def normalised(value: str) -> str:
    """How a value is compared with the allow-list: lower case, without spaces and separators."""
    return re.sub(r"[\s\-().]", "", value).lower()


def redact(text: str, found) -> str:
    """``text`` with each finding replaced by ``<ENTITY>`` (overlapping findings: the first wins)."""
    out, position = [], 0
    for finding in sorted(found, key=lambda f: (f.start, -f.end)):
        if finding.start < position:
            continue
        out += [text[position : finding.start], f"<{finding.entity}>"]
        position = finding.end
    return "".join([*out, text[position:]])

"""What a text hides from a pattern: the views the input rails screen, and the signs of hiding.

``views(text)`` gives the text as a reader sees it (Unicode NFKC, look-alike letters of other
scripts folded to Latin, accents and stacked marks removed, invisible, bidirectional and variant
characters dropped, single spaces), then what it carries unseen: Unicode tag characters read as
the ASCII they encode, base64/base32/hex/URL-encoded runs decoded when they decode to text, and
the whole text under ROT13, reversed and with digits read as letters (leetspeak).

``signs(text)`` names the ways the text hides content that no reader of documentation needs:
tag characters, invisible characters inside words, words mixing scripts, stacked combining marks,
variant-selector runs, Braille, and encoded runs that decode to text. The ``obfuscation`` rule
acts on them; the ``injection`` rule screens every view.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import re
import unicodedata
from urllib.parse import unquote

SPACES = re.compile(r"[^\S\n]+")
LINES = re.compile(r"\s*\n\s*")
FRAGMENTS = re.compile(r"[\"'“”‘’]([^\"'“”‘’\n]{0,16})[\"'“”‘’]\s*[,+]?\s*")
# Look-alike letters of Cyrillic and Greek folded to the Latin letter they imitate.
LOOK_ALIKES = {
    "Latin": "ABEHIJKMOPCSTXYaeijopcsxydqwhABEZHIKMNOPTYXaeikvoptuxig",
    "Other": "АВЕНІЈКМОРСЅТХУаеіјорсѕхуԁԛԝһΑΒΕΖΗΙΚΜΝΟΡΤΥΧαεικνορτυχıɡ",
}
CONFUSABLES = str.maketrans(LOOK_ALIKES["Other"], LOOK_ALIKES["Latin"])
LEET_WORD = re.compile(r"[A-Za-z]+[0134578@$]+[A-Za-z]|\b[0134578@$][A-Za-z]{2,}")
LEET = str.maketrans("0134578@$", "oieastbas")
TAGS = range(0xE0000, 0xE0080)
VARIANTS = (range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0))
BRAILLE = range(0x2800, 0x2900)
ENCODED = {
    "base64": re.compile(r"[A-Za-z0-9+/]{16,}={0,2}"),
    "base32": re.compile(r"[A-Z2-7]{16,}={0,6}"),
    "hex": re.compile(r"(?:[0-9a-fA-F]{2}){8,}"),
}
CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Words that make up a good share of any English sentence and none of a text turned by ROT13,
# reversed or written in digits: without them, the turned views are screened too.
COMMON = frozenset(
    [
        "the",
        "a",
        "an",
        "to",
        "of",
        "and",
        "or",
        "in",
        "on",
        "for",
        "is",
        "are",
        "be",
        "do",
        "does",
        "did",
        "i",
        "you",
        "it",
        "this",
        "that",
        "what",
        "how",
        "why",
        "when",
        "where",
        "which",
        "can",
        "with",
        "my",
        "your",
        "from",
        "as",
        "at",
        "by",
        "not",
        "if",
    ]
)
WORDS = re.compile(r"[a-z0-9]+")
URL_ESCAPES = re.compile(r"(?:%[0-9a-fA-F]{2}){3,}")
LATIN, OTHER = "LATIN", ("CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE")


def _invisible(char: str) -> bool:
    code = ord(char)
    return unicodedata.category(char) == "Cf" or code in TAGS or any(code in block for block in VARIANTS)


@functools.lru_cache(maxsize=256)
def fold(text: str) -> str:
    """``text`` as a reader sees it: NFKC, look-alikes folded, marks and invisible characters dropped."""
    if text.isascii():
        return LINES.sub("\n", SPACES.sub(" ", CONTROLS.sub("", text))).strip()
    text = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text))
    kept = "".join(c for c in text if unicodedata.category(c) != "Mn" and not _invisible(c))
    return LINES.sub("\n", SPACES.sub(" ", CONTROLS.sub("", kept.translate(CONFUSABLES)))).strip()


def tagged(text: str) -> str:
    """The ASCII carried by Unicode tag characters (invisible in most interfaces)."""
    if text.isascii():
        return ""
    return "".join(chr(ord(c) - 0xE0000) for c in text if ord(c) in TAGS and 0x20 <= ord(c) - 0xE0000 < 0x7F)


def _readable(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    letters = sum(c.isalpha() or c.isspace() for c in text)
    return text if len(text) >= 6 and letters >= 0.7 * len(text) and " " in text.strip() else None


@functools.lru_cache(maxsize=256)
def decoded(text: str) -> tuple[tuple[str, str], ...]:
    """``(encoding, text)`` for each run of ``text`` that decodes to readable text."""
    found = []
    for name, pattern in ENCODED.items():
        for run in pattern.findall(text):
            try:
                if name == "base64":
                    data = base64.b64decode(run + "=" * (-len(run) % 4), validate=True)
                elif name == "base32":
                    data = base64.b32decode(run + "=" * (-len(run) % 8))
                else:
                    data = bytes.fromhex(run)
            except (binascii.Error, ValueError):
                continue
            readable = _readable(data)
            if readable:
                found.append((name, readable))
    for run in URL_ESCAPES.findall(text):
        readable = _readable(unquote(run).encode("utf-8", "ignore"))
        if readable:
            found.append(("url", readable))
    return tuple(found)


def views(text: str) -> list[tuple[str, str]]:
    """``(view, text)`` pairs to screen: the folded text first, then what the text hides."""
    seen = fold(text)
    out = [("text", seen)]
    hidden = tagged(text)
    if hidden:
        out.append(("tag characters", SPACES.sub(" ", hidden)))
    out += [(name, fold(value)) for name, value in decoded(text)]
    pieces = FRAGMENTS.findall(seen)
    if len(pieces) >= 4:  # a string assembled from quoted pieces ("![t","](htt","ps",...)
        out.append(("assembled", "".join(pieces)))
    if not plain(seen):
        out.append(("rot13", codecs.encode(seen, "rot13")))
        out.append(("reversed", seen[::-1]))
    if LEET_WORD.search(seen):
        out.append(("leetspeak", seen.translate(LEET)))
    return out


def plain(text: str, share: float = 0.15) -> bool:
    """At least ``share`` of the words are common English words (none are in turned text)."""
    words = WORDS.findall(text.lower())
    return len(words) >= 4 and sum(w in COMMON for w in words) >= share * len(words)


def _script(char: str) -> str | None:
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    if name.startswith(LATIN):
        return LATIN
    return next((script for script in OTHER if name.startswith(script)), "OTHER")


ODD = re.compile(r"[\[\](){}<>\\/|*^~`=+$#@!;]")


CODE_LINE = re.compile(
    r"^(\||-->|at |#|//|>>>|\$ |File \"|Traceback|\d+ \|)|[;{}(),:\[]$| = |=>|->|::|\(\)|\w\.\w+\("
)


def gibberish(text: str, window: int = 16, share: float = 0.4) -> bool:
    """A run of tokens that are not words: symbols glued to letters, as optimised adversarial
    suffixes and ciphers are (at least ``share`` of a ``window`` of whitespace-separated tokens).
    Lines of code and logs (``CODE_LINE``) are symbols by nature and are not counted."""
    prose = " ".join(line for line in text.split("\n") if not CODE_LINE.search(line.strip()))
    odd = [
        len(ODD.findall(t)) >= 2 or (len(t) > 2 and not any(c.isalpha() for c in t)) for t in prose.split()
    ]
    need, count = share * window, 0
    for at, flag in enumerate(odd):
        count += flag - (odd[at - window] if at >= window else 0)
        if count >= need:
            return True
    return False


def signs(text: str) -> list[str]:
    """The ways ``text`` hides content (empty for text a person typed in any one script)."""
    found = []
    if CONTROLS.search(text):
        found.append("control characters")
    if not text.isascii():
        found += _unicode_signs(text)
    if decoded(text):
        found.append("encoded text")
    if gibberish(fold(text)):
        found.append("gibberish")
    return found


def _unicode_signs(text: str) -> list[str]:
    found = []
    codes = [ord(c) for c in text]
    if any(code in TAGS for code in codes):
        found.append("tag characters")
    if any(code in VARIANTS[1] for code in codes) or sum(code in VARIANTS[0] for code in codes) >= 4:
        found.append("variant selectors")
    if sum(code in BRAILLE for code in codes) >= 3:
        found.append("braille")
    if sum(unicodedata.category(c) == "Cf" for c in text if ord(c) not in TAGS) >= 3 or re.search(
        r"\w[\u200b\u200c\u200d\u2060\u00ad\u180e]+\w", text
    ):
        found.append("invisible characters")
    if any(0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069 for code in codes):
        found.append("bidirectional controls")
    mixed = 0
    for word in re.findall(r"\w{2,}", unicodedata.normalize("NFKC", text)):
        scripts = {_script(c) for c in word} - {None}
        if LATIN in scripts and scripts & set(OTHER):
            mixed += 1
    if mixed >= 2:
        found.append("words mixing scripts")
    if re.search(
        r"\w[\u0300-\u036f\u0483-\u0489\u1dc0-\u1dff\u20d0-\u20ff]{3,}", unicodedata.normalize("NFD", text)
    ):
        found.append("stacked marks")  # no script stacks three marks on a letter
    return found

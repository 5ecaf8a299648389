"""Pure text normalisation for headlines: what readers see, and what matching compares.

Two forms of a headline exist and must not be confused:

* the *display* form (:func:`display_headline`) is what is stored and pushed to readers; only
  Unicode composition and whitespace are touched, so newlines can never break SSE framing;
* the *comparison* form (:func:`comparison_form`) is for matching only: case, accents, Arabic
  spelling variants, digit scripts, punctuation and alert prefixes ("BREAKING:") are folded away.

:func:`dedupe_key` hashes the comparison form with the edition for exact-duplicate detection.
No I/O here; everything is deterministic and safe to call from any process.
"""

# Arabic letters and digits are the subject matter here, not look-alike typos.
# ruff: noqa: RUF001

from __future__ import annotations

import hashlib
import re
import unicodedata

from ticker.editions import language_of

__all__ = [
    "DEDUPE_KEY_VERSION",
    "comparison_form",
    "dedupe_key",
    "display_headline",
    "language_of",
    "strip_alert_prefix",
]

# Bumped whenever comparison_form changes, so keys written by an older worker never collide
# with (or falsely miss) keys written by a newer one during a rolling deploy.
DEDUPE_KEY_VERSION = "1"

# Alert labels desks put in front of a headline. English labels appear in every edition
# (agency copy), the rest only in their own language. Latin labels need a separator after
# them so that "Update on talks" or "Breaking news emerges" keep their first word.
_LABELS: dict[str, tuple[str, ...]] = {
    "en": (
        "breaking news",
        "breaking",
        "urgent",
        "update",
        "updated",
        "just in",
        "developing",
        "flash",
        "alert",
    ),
    "es": ("última hora", "ultima hora", "urgente", "actualización", "actualizacion", "alerta"),
    "ar": ("عاجل", "خبر عاجل", "تحديث", "تنبيه"),
}
# Arabic tickers often write the label with no punctuation at all ("عاجل مقتل ..."), which is
# unambiguous because the word is never a headline's natural opening.
_BARE_LABELS = ("خبر عاجل", "عاجل")
_OPEN = r"[\s\[\(«\"'“‘|*•-]*"
_CLOSE = r"[\s\]\)»\"'”’*]*"
# A dash only separates when spaced ("Urgent - ...", not "Urgent-care clinics close").
_SEP = r"(?:[:：|•،]+|[\-–—]+(?=\s)|\s*[\]\)»]+)"


def _label_pattern(labels: tuple[str, ...]) -> re.Pattern[str]:
    # Longest first, so "breaking news" wins over "breaking".
    alts = "|".join(re.escape(x) for x in sorted(labels, key=len, reverse=True))
    return re.compile(rf"^{_OPEN}(?:{alts}){_CLOSE}{_SEP}\s*", re.IGNORECASE)


_PATTERNS: dict[str, re.Pattern[str]] = {
    lang: _label_pattern(_LABELS["en"] + labels) for lang, labels in _LABELS.items()
}
_ANY_PATTERN = _label_pattern(tuple(x for labels in _LABELS.values() for x in labels))
_BARE_RE = re.compile(rf"^(?:{'|'.join(_BARE_LABELS)})\s+")

# Arabic: harakat (fathatan..sukun), superscript alef and Quranic annotation marks are
# optional in writing; hamza/madda marks (U+0653-U+0655) are kept so that waw/yeh carriers
# recompose. Tatweel (U+0640) is a pure stretching character.
_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u0652\u0656-\u065f\u0670\u06d6-\u06ed\u0640]")
_ARABIC_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه"})
# Latin letters with no canonical decomposition that readers still treat as accented.
_LATIN_EXTRA = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ı": "i", "ŀ": "l"})
# Thousands groups ("1,000", "1.000", Arabic "1\u066c000") collapse; other separators split.
_THOUSANDS = re.compile(r"(?<=\d)[,.\u066c](?=\d{3}(?!\d))")
_APOSTROPHES = re.compile("['’ʼ`´]")
_NOT_ALNUM_ASCII = re.compile("[^0-9A-Za-z]")


def display_headline(text: str) -> str:
    """Return the reader-facing form: NFC, every whitespace run (newlines, tabs) one space."""
    # str.split() with no argument splits on all Unicode whitespace, including \r, \n, \t,
    # \v, \f, U+0085, U+2028 and U+2029, which is what keeps SSE frames intact.
    return " ".join(unicodedata.normalize("NFC", text).split())


def strip_alert_prefix(text: str, lang: str) -> str:
    """Return ``text`` without leading alert labels such as "BREAKING:" or "عاجل:"."""
    # An edition tag ("es-419") is accepted where a language is asked for.
    pattern = _PATTERNS.get(language_of(lang), _ANY_PATTERN)
    while True:
        stripped = pattern.sub("", text, count=1)
        if stripped == text or not stripped.strip():
            # Never strip a headline down to nothing: "BREAKING:" alone stays as it is.
            return text
        text = stripped


def _fold_char_marks(text: str) -> str:
    # Keep combining marks only on letters of other scripts, where they change the letter
    # (Cyrillic "й", Devanagari vowel signs); on Latin letters they are accents ("é" -> "e"),
    # and on digits or punctuation they are noise.
    out: list[str] = []
    keep_marks = False
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.combining(ch):
            if keep_marks:
                out.append(ch)
            continue
        keep_marks = ch.isalpha() and not unicodedata.name(ch, "LATIN").startswith("LATIN")
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def _fold(text: str) -> str:
    # NFKC, casefold, NFKC is the stable "NFKC_Casefold" order: full-width letters, ligatures
    # and Arabic presentation forms become plain letters, and a second pass changes nothing.
    if text.isascii():  # most agency copy: NFKC and every mark step leave ASCII as it is
        return text.lower()
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    text = _ARABIC_MARKS.sub("", text).translate(_ARABIC_LETTERS)
    # Every decimal digit (Arabic-Indic, Eastern Arabic-Indic, Devanagari...) becomes ASCII.
    text = "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)
    return _fold_char_marks(text).translate(_LATIN_EXTRA)


def _strip_punctuation(text: str) -> str:
    text = _THOUSANDS.sub("", text)
    text = _APOSTROPHES.sub("", text)  # "Israel's" -> "israels", not "israel s"
    if text.isascii():  # the loop below, for ASCII: letters and digits stay
        return _NOT_ALNUM_ASCII.sub(" ", text)
    # Keep letters, digits and the combining marks on them (non-Latin vowel signs); everything
    # else, punctuation, symbols and format characters (RLM, ZWJ), separates words. A mark left
    # on punctuation goes with it, or it would start a word of its own.
    out: list[str] = []
    for ch in text:
        is_mark = unicodedata.category(ch).startswith("M")
        keep = ch.isalnum() or (is_mark and bool(out) and out[-1] != " ")
        out.append(ch if keep else " ")
    return "".join(out)


def comparison_form(text: str, lang: str) -> str:
    """Return the matching form: folded, unpunctuated, without alert labels, single-spaced."""
    text = strip_alert_prefix(display_headline(text), lang)
    text = " ".join(_strip_punctuation(_fold(text)).split())
    # Labels written without punctuation (or hidden behind quotes) only show up now.
    while (stripped := _BARE_RE.sub("", text, count=1)) != text and stripped:
        text = stripped
    return text


def dedupe_key(headline: str, edition: str) -> str:
    """Return a stable sha256 hex key of the edition and the headline's comparison form."""
    # BCP 47 tags are case-insensitive: "en-GB" and "en-gb" are one edition.
    tag = edition.strip().lower()
    form = comparison_form(headline, language_of(tag))
    payload = f"v{DEDUPE_KEY_VERSION}\x1f{tag}\x1f{form}"
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()

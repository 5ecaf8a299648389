"""Headline normalisation (pure). A fuller language-aware version lands with issue 3."""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = ["comparison_form", "dedupe_key", "display_headline", "language_of"]

_WS = re.compile(r"\s+")


def display_headline(text: str) -> str:
    """What readers see: NFC, runs of whitespace (newlines too) folded to one space."""
    return _WS.sub(" ", unicodedata.normalize("NFC", text)).strip()


def language_of(edition: str) -> str:
    return edition.split("-")[0].lower()


def comparison_form(text: str, lang: str) -> str:
    folded = unicodedata.normalize("NFKD", display_headline(text).casefold())
    return "".join(c for c in folded if unicodedata.category(c)[0] in "LNZ").strip()


def dedupe_key(headline: str, edition: str) -> str:
    form = comparison_form(headline, language_of(edition))
    return hashlib.sha256(f"{edition}\x00{form}".encode()).hexdigest()

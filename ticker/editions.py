"""Editions (pure): the language of an edition's tag, its writing direction, its alert label.

One definition for every path that shows an edition to a reader: the push
bridge's notifications, Web Push alerts and the partner feeds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["LABELS", "RTL_LANGUAGES", "direction_of", "language_of", "title_of"]

# The label a breaking item carries on a notification or a feed, per language.
LABELS = {"en": "BREAKING", "ar": "عاجل", "es": "ÚLTIMA HORA"}
RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur"})


def language_of(edition: str) -> str:
    """Return the primary language subtag of a BCP 47 edition tag ("en-GB" -> "en")."""
    primary = re.split(r"[-_]", edition.strip(), maxsplit=1)[0].lower()
    return primary if primary.isalpha() else "und"


def direction_of(language: str) -> str:
    """``rtl`` for a right-to-left language (tag or subtag), else ``ltr``."""
    return "rtl" if language_of(language) in RTL_LANGUAGES else "ltr"


def title_of(item: Mapping[str, Any]) -> str:
    """The edition's label for an item (BREAKING, عاجل, ÚLTIMA HORA)."""
    return LABELS.get(language_of(str(item.get("edition") or "")), LABELS["en"])

"""Word lists of the story matcher, one file per language, reviewed like code.

Each ``<lang>.txt`` holds sections (``[events]``, ``[synonyms]``...); a line is
``canonical: variant | variant | a multi-word variant`` (or just variants, for the sections
without a canonical form). What each section means is said at the top of ``en.txt``.
This module only reads the files; :mod:`workers.storyfacts` gives them meaning.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

__all__ = ["LANGUAGES", "Section", "read_sections"]

LANGUAGES = ("en", "es", "ar")

# section -> [(canonical or "", [variants])]
Section = list[tuple[str, list[str]]]


@lru_cache(maxsize=8)
def read_sections(lang: str) -> dict[str, Section]:
    """The sections of ``<lang>.txt``, shipped as package data."""
    text = resources.files(__package__).joinpath(f"{lang}.txt").read_text(encoding="utf-8")
    sections: dict[str, Section] = {}
    current: Section | None = None
    for raw in text.splitlines():
        line = raw.strip()
        # Comments are whole lines starting "# "; "#2" (an ordinal) is data.
        if not line or line == "#" or line.startswith("# "):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip(), [])
            continue
        if current is None:
            raise ValueError(f"{lang}.txt: a line before any section: {raw!r}")
        canonical, sep, rest = line.partition(":")
        if not sep:
            canonical, rest = "", line
        variants = [v.strip() for v in rest.split("|") if v.strip()]
        current.append((canonical.strip(), variants))
    return sections

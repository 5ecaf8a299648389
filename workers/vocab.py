"""The matcher's vocabulary for one language: word lists folded and stemmed once.

Pure and cached: :func:`vocabulary` reads ``workers/lexicon/<lang>.txt``, folds every
variant the way headlines are folded (case, accents, Arabic letter forms) and stems it with
the language's Snowball stemmer (PyStemmer), so lists are written naturally.
Word rarity comes from wordfreq, whose frequency lists ship inside its wheel.
"""

# Arabic letters are the subject matter here, not look-alike typos.
# ruff: noqa: RUF001

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import Stemmer
from wordfreq import zipf_frequency

from ticker.normalise import language_of
from workers.lexicon import LANGUAGES, read_sections

__all__ = ["Vocabulary", "fold", "vocabulary"]

_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u0652\u0656-\u065f\u0670\u06d6-\u06ed\u0640]")
_ARABIC_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه"})
_STEMMERS = {"en": "english", "es": "spanish", "ar": "arabic"}
# Which kind wins when one phrase is in two sections: names first, then what changes facts.
_PRIORITY = (
    "stopwords",
    "synonyms",
    "attribution",
    "titles",
    "dates",
    "negation",
    "events",
    "places",
    "aliases",
)


def fold(word: str) -> str:
    """Case, accents, Arabic marks and letter variants folded away (one word)."""
    word = unicodedata.normalize("NFKC", word).casefold()
    word = _ARABIC_MARKS.sub("", word).translate(_ARABIC_LETTERS)
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Everything the feature extractor needs to know about one language."""

    lang: str
    # stemmed phrase -> (kind, canonical): kind is a section name ("events", "aliases"...)
    phrases: dict[tuple[str, ...], tuple[str, str]]
    rewrites: dict[tuple[str, ...], tuple[str, ...]]  # stemmed phrase -> folded words
    longest: int
    numbers: dict[str, str]  # folded word -> "2", "~100" (vague), "#2" (ordinal)
    transitive: frozenset[str]
    generic: frozenset[str]  # stems
    joiners: frozenset[str]  # folded words allowed inside a name ("Bank of England")

    def stem(self, word: str) -> str:
        return _stem(self.lang, word)

    def rarity(self, word: str) -> float:
        """0 for the commonest words up to 8 for words wordfreq has never seen."""
        return max(0.0, 8.0 - zipf_frequency(word, self.lang))


@lru_cache(maxsize=65536)
def _stem(lang: str, word: str) -> str:
    return _stemmer(lang).stemWord(word)


@lru_cache(maxsize=4)
def _stemmer(lang: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(_STEMMERS[lang])


def _key(lang: str, phrase: str) -> tuple[str, ...]:
    return tuple(_stem(lang, fold(w)) for w in phrase.replace("-", " ").split())


@lru_cache(maxsize=8)
def vocabulary(lang: str) -> Vocabulary:
    """The vocabulary of an edition's language; English lists for languages without any."""
    lang = language_of(lang)
    lang = lang if lang in LANGUAGES else "en"
    sections = read_sections(lang)
    phrases: dict[tuple[str, ...], tuple[str, str]] = {}
    for kind in _PRIORITY:
        for canonical, variants in sections.get(kind, []):
            for variant in variants:
                # Lists may hold stems ("injur"), which a second stemming could change.
                raw = tuple(fold(w) for w in variant.replace("-", " ").split())
                for key in (raw, _key(lang, variant)):
                    phrases[key] = (kind, canonical or fold(variant))
    rewrites: dict[tuple[str, ...], tuple[str, ...]] = {}
    for canonical, variants in sections.get("rewrites", []):
        for v in variants:
            rewrites[_key(lang, v)] = tuple(fold(w) for w in canonical.split())
    numbers = {
        fold(v): value for value, variants in sections.get("numbers", []) for v in variants
    }
    transitive = frozenset(c or v for c, vs in sections.get("transitive", []) for v in vs)
    generic = frozenset(k[0] for _, vs in sections.get("generic", []) for v in vs if (k := _key(lang, v)))
    joiners = frozenset(v for _, vs in sections.get("joiners", []) for v in vs)
    longest = max(len(k) for k in [*phrases, *rewrites])
    return Vocabulary(
        lang, phrases, rewrites, longest, numbers, transitive, generic, joiners or frozenset()
    )

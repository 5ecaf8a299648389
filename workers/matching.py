"""The duplicate decision between two headlines' facts; pure, no I/O.

Rules, in order of weight (docs/story-matching.md):

1. **A changed fact vetoes**, however alike the words: another number; a negation on one
   side only that denies what the other says; an event on each side the other lacks, or
   one added that is more than a circumstance (killed, not "in a blast"); another role;
   a name on each side that the other lacks (a place, person or organisation swapped);
   a new name on one side (outside an attribution, and not a country given as context);
   actor and target swapped (by the event's actor, or two names around the same words in
   the other order); and, where the lists know nothing of the changed word, one word put
   in another's place in an otherwise unchanged headline, or in the same slot (the
   modifier of one head, a name beside the same word).
2. **Otherwise the words decide**: a rarity-weighted overlap of the two headlines' content
   words (stems, synonyms made one, a word's two forms paired), at or above
   :data:`THRESHOLD`.

A name is present in the other headline as itself, an inflection or transliteration, an
alias, or an abbreviation ("BOJ" / "Bank of Japan"); a word of two event classes
("lifts": rise or lift) matches either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache

from rapidfuzz import fuzz

from workers.gazetteer import place, within
from workers.storyfacts import Facts, Name
from workers.vocab import fold, vocabulary

__all__ = ["MIN_SHARED", "THRESHOLD", "Verdict", "compare"]

# Tuned on the dev split of tests/data/stories (docs/story-matching.md has the figures).
THRESHOLD = 50.0
# Least weight two headlines must share (a name weighs 4, an event 2, a word its rarity).
MIN_SHARED = 4.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether two headlines tell one story, and why: what an editor sees on a held item."""

    same: bool
    score: float
    reason: str
    shared: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "score": round(self.score, 1),
            "reason": self.reason,
            "shared": self.shared,
            "differing": self.differing,
        }


@lru_cache(maxsize=65536)
def _initials(text: str) -> frozenset[str]:
    """What a name of several words is abbreviated to: "Bank of England" -> "be", "boe";
    "Estados Unidos" -> "eu", "eeuu" (Spanish doubles the letters of a plural)."""
    words = text.replace("-", " ").split()
    caps = [w for w in words if w[:1].isupper()]
    if len(caps) < 2:
        return frozenset()
    out = {"".join(w[0] for w in caps), "".join(w[0] for w in words if w[:1].isalpha())}
    if all(w.lower().endswith("s") for w in caps):
        out.add("".join(w[0] * 2 for w in caps))
    return frozenset(x.lower() for x in out)


def _acronym(text: str) -> str:
    """ "UN", "BoE", "U.N.", "EEUU" as a lowercase string; "" for any other name."""
    bare = text.replace(".", "")
    if " " in bare or not 2 <= len(bare) <= 6 or sum(c.isupper() for c in bare) < 2:
        return ""
    return bare.lower()


_SILENT = frozenset("aeiouyhw\u0627\u0648\u064a")  # vowels, and Arabic alif, waw, ya


@lru_cache(maxsize=65536)
def _skeleton(word: str) -> str:
    """A name's consonants (after its first letter), doubled ones once: transliterations
    agree there ("Zelensky" / "Zelenskiy", "ترامب" / "ترمب")."""
    out = word[:1]
    for c in word[1:]:
        if c not in _SILENT and c != out[-1]:
            out += c
    return out


def _abbreviated(name: Name, other: Facts) -> bool:
    """An abbreviation on one side, the words on the other ("BoE" / "Bank of England")."""
    if _initials(name.text) & other.words:
        return True
    acronym = _acronym(name.text)
    if not acronym:
        return False
    if any(acronym in _initials(n.text) for n in other.names):
        return True
    # ... or words only partly a name: "BOJ" / "Bank of Japan" ("Bank" opens the headline).
    return _spelt(acronym, other, {k for n in other.names for k in n.keys})


def _spelt(acronym: str, facts: Facts, keys: set[str]) -> bool:
    """Whether words in a row, one of them in ``keys``, have the acronym's initials
    (small words such as "of" / "de" may or may not have a letter)."""
    if len(acronym) < 3:
        return False
    # Words of a name: names, or the generic words names are made of ("Bank", "Court").
    generic = vocabulary(facts.lang or "en").generic
    for letters in {acronym, acronym[0] + acronym[1:].replace("o", "").replace("d", "")}:
        n = len(letters)
        for i in range(len(facts.order) - n + 1):
            run = facts.order[i : i + n]
            if (
                "".join(k[:1] for k in run) == letters
                and keys.intersection(run)
                and all(
                    k in keys or k in generic or any(k in m.keys for m in facts.names) for k in run
                )
            ):
                return True
    return False


def _expanded(name: Name, own: Facts, other: Facts) -> bool:
    """A name that is part of words the other headline abbreviates ("Japan" in "Bank of
    Japan" / "BOJ")."""
    keys = set(name.keys)
    return any((acronym := _acronym(m.text)) and _spelt(acronym, own, keys) for m in other.names)


def _key_present(key: str, other: Facts) -> bool:
    if key in other.words:
        return True
    if place(key) and any(_two_places(key, k) for n in other.names for k in n.keys):
        return False  # the alike word is the other place's ("Níger" / "Nigeria": "nigeri")
    for word in other.by_letter.get(key[:1], ()):
        short, long = sorted((key, word), key=len)
        # Inflection and spelling drift of one name ("Zelensky"/"Zelenskyy",
        # "Iraq"/"Iraqi"), but not "Iran"/"Iraq" or "Austria"/"Australia" (above).
        if len(short) >= 4 and long.startswith(short) and len(long) - len(short) <= 2:
            return True
        if len(short) >= 6 and fuzz.ratio(key, word) >= 85:
            return True
        if len(skeleton := _skeleton(key)) >= 4 and skeleton == _skeleton(word):
            return True
    return False


# A part of a country ("south Lebanon", "el sur del Líbano", "جنوب لبنان") holds only
# some of its towns: no nesting there.
_DIRECTIONS = ("north", "south", "east", "west", "central", "norte", "sur", "este", "oeste")
_AR_DIRECTIONS = frozenset(fold(w) for w in ("شمال", "جنوب", "شرق", "غرب", "وسط"))


def _nested(a: Facts, b: Facts, names_a: Sequence[Name], names_b: Sequence[Name]) -> set[str]:
    """The first keys of the names that are a town on one side and the country holding
    it on the other ("Johannesburg" / "South Africa", "الخرطوم" / "السودان")."""
    out = set()
    for n in names_a:
        for m in names_b:
            if (_holds(m, n) and not _part_of(b, m)) or (_holds(n, m) and not _part_of(a, n)):
                out |= {n.keys[0], m.keys[0]}
    return out


def _holds(country: Name, town: Name) -> bool:
    return any(within(t, c) for t in (town.text, *town.keys) for c in (country.text, *country.keys))


def _part_of(facts: Facts, country: Name) -> bool:
    """Whether a direction comes before the country's name: "south Lebanon"."""
    key = country.keys[0]
    i = facts.order.index(key) if key in facts.order else 0
    before = facts.order[i - 1] if i > 0 else ""
    return before.startswith(_DIRECTIONS) or before in _AR_DIRECTIONS


def _two_places(x: str, y: str) -> bool:
    """Two countries or towns spelt alike are two places: "Niger" / "Nigeria", "Austria" /
    "Australia" (inflection and spelling drift would pair them)."""
    return x != y and place(x) and place(y)


def _present(name: Name, other: Facts, own: Facts | None = None) -> bool:
    if any(_key_present(k, other) for k in name.keys) or _abbreviated(name, other):
        return True
    return own is not None and _expanded(name, own, other)


def _missing(a: Facts, b: Facts) -> list[Name]:
    return [n for n in a.names if not n.source and not _present(n, b, a)]


def _veto(a: Facts, b: Facts) -> tuple[str, list[str]] | None:
    if a.numbers != b.numbers:
        return "number", sorted(a.numbers ^ b.numbers)
    if a.negated != b.negated and _contradicts(a if a.negated else b, b if a.negated else a):
        return "polarity", ["negation"]
    only_a, only_b = _unmatched(a.events, b.events), _unmatched(b.events, a.events)
    # Another event on each side is a changed event (killed / wounded, drone / missile);
    # one added on one side is news unless it only says how or where ("blast", "school").
    # A toll that rises or what "leaves" people dead is no alternative to a circumstance
    # on the other side ("toll rises to 45" / "blast kills 45").
    told_a, told_b = only_a - _told(a), only_b - _told(b)
    if _one_attack(told_a, told_b) or _one_attack(told_b, told_a):
        told_a, told_b = told_a - _ATTACKS, told_b - _ATTACKS
    if (told_a and told_b) or (only_a - a.means) or (only_b - b.means):
        return "event", sorted(only_a | only_b)
    # "foreign minister" for "vice president": another person, named by role (unless
    # both roles qualify one name: "Chinese leader Xi" / "President Xi").
    one_person = _one_person(a, b) and _one_person(b, a)
    if a.titles - b.titles and b.titles - a.titles and not one_person:
        return "person", sorted(a.titles ^ b.titles)
    miss_a, miss_b = _missing(a, b), _missing(b, a)
    # A town on one side, the country that holds it on the other, is one place told more
    # or less precisely ("summit in Johannesburg" / "travel to South Africa").
    nested = _nested(a, b, miss_a, miss_b)
    miss_a = [n for n in miss_a if n.keys[0] not in nested]
    miss_b = [n for n in miss_b if n.keys[0] not in nested]
    # A word only maybe a name (Arabic: any word outside the lists) is left to the swap
    # check below: rewrites change many such words, a look-alike changes one.
    # ... unless only one or two such words differ, one side having a single one: a swap.
    sure_a, sure_b = [n for n in miss_a if not n.maybe], [n for n in miss_b if not n.maybe]
    few = min(len(miss_a), len(miss_b)) >= 1 and max(len(miss_a), len(miss_b)) <= 2
    # ... or when nothing else differs: "mayor of Ankara X" / "mayor of Istanbul Y".
    if miss_a and miss_b and not few:
        keys = {k for n in (*a.names, *b.names) for k in n.keys}
        few = set(a.content) ^ set(b.content) <= keys
    if (sure_a and miss_b) or (miss_a and sure_b) or few:
        return "name", [n.text for n in miss_a + miss_b]
    extra = [n.text for n in miss_a + miss_b if not n.place and not n.maybe]
    if extra:
        return "new name", extra
    if not (a.passive or b.passive):
        for event, actor, target in a.actors:
            for event_b, actor_b, target_b in b.actors:
                # A word of two classes ("strikes": attack or landfall) is either.
                if set(event.split("|")).isdisjoint(event_b.split("|")):
                    continue
                if (actor and actor in (target_b,)) or (target and target == actor_b):
                    return "actor", [f"{event}: {actor} -> {target} / {actor_b} -> {target_b}"]
    if not (a.passive or b.passive) and (crossed := _crossed(a, b)):
        return "actor", crossed
    if swapped := _swapped(a, b) or _swapped(b, a):
        return "word", swapped
    return None


def _one_person(a: Facts, b: Facts) -> bool:
    """Whether each role only ``a`` names qualifies a name ``b`` has too: "Chinese leader
    Xi" / "President Xi" is one person (but "foreign minister" / "defence minister",
    or either beside a name the other lacks, is not)."""
    qualified = {title: key for title, key in a.titled}
    for title in a.titles - b.titles:
        key = qualified.get(title)
        name = next((n for n in a.names if key in n.keys), None)
        if name is None or not _present(name, b):
            return False
    return True


# An attack told precisely: by gunfire, a blast, a drone, a missile or shelling.
_ATTACK_MEANS = frozenset({"shoot", "explode", "blast", "drone", "missile", "artillery"})
_ATTACKS = _ATTACK_MEANS | {"attack"}


def _one_attack(broad: frozenset[str], precise: frozenset[str]) -> bool:
    """Whether one side says "attack" where the other says only how it was made ("Attack
    in Burkina Faso kills 10" / "Gunmen kill 10 in Burkina Faso"); two different means
    (drone / missile) still differ."""
    return {c for e in broad for c in e.split("|")} & _ATTACKS == {"attack"} and len(
        {c for e in precise for c in e.split("|")} & _ATTACK_MEANS
    ) == 1


def _told(facts: Facts) -> frozenset[str]:
    """The means that are no circumstance but how the news is told (a toll that rises,
    what "leaves" people dead, a market that closes)."""
    circumstances = vocabulary(facts.lang or "en").circumstances
    return frozenset(e for e in facts.means if not set(e.split("|")) <= circumstances)


def _unmatched(events: frozenset[str], other: frozenset[str]) -> frozenset[str]:
    """The events of one headline the other has not, a word of two classes ("lifts",
    "rise|lift") matching either."""
    classes = {c for e in other for c in e.split("|")}
    return frozenset(e for e in events if not set(e.split("|")) & classes)


def _one_name(facts: Facts, x: str, y: str) -> bool:
    return any(x in n.keys and y in n.keys for n in facts.names)


def _says(facts: Facts, key: str) -> bool:
    """Whether a headline has this word, an event class of it included ("layoff" in a
    headline that says "cut", "fall|layoff")."""
    return key in facts.content or not facts.classes.isdisjoint(key.split("|"))


def _number(key: str) -> bool:
    return key[:1].isdigit() or key[:1] in "~#"


def _related(x: str, y: str) -> bool:
    """Two forms of one word: inflection or spelling drift ("Zelensky"/"Zelenskyy"), or
    event classes one of which may mean the other ("fall" / "crash|fall")."""
    xs, ys = frozenset(x.split("|")), frozenset(y.split("|"))
    if xs & ys or _one_attack(xs, ys) or _one_attack(ys, xs):
        return True
    short, long = sorted((x, y), key=len)
    # Not a prefix that turns a word around ("acelera" / "desacelera").
    return (len(short) >= 4 and long.startswith(short[:4])) or (
        x[:1] == y[:1] and fuzz.ratio(x, y) >= 85
    )


def _spans(facts: Facts) -> set[tuple[str, frozenset[str], str]]:
    """(name, the words between, next name) for each two names in a row."""
    # Each word of a name stands for the whole name ("Real Madrid": "real"); a place
    # given as context ("in Iceland") is where, not who.
    keys = {k: n.keys[0] for n in facts.names if not n.place for k in n.keys}
    spans: set[tuple[str, frozenset[str], str]] = set()
    last = ""
    between: list[str] = []
    for key in facts.order:
        if key in keys:
            # Few words between: "England beat Australia", not a clause apart.
            if last and 0 < len(between) <= 3 and keys[key] != last:
                spans.add((last, frozenset(between), keys[key]))
            if keys[key] != last:
                last, between = keys[key], []
        elif last:
            between.append(key)
    return spans


def _classes(keys: frozenset[str]) -> set[str]:
    """Content keys with each event of two classes ("attack|landfall") split into both."""
    return {c for k in keys for c in k.split("|")}


def _crossed(a: Facts, b: Facts) -> list[str]:
    """Two names each side of the same words, in the other order: "England beat
    Australia" / "Australia beat England", whatever the lists know of the verb."""
    for x, between, y in _spans(a):
        for x_b, between_b, y_b in _spans(b):
            if (x, y) == (y_b, x_b) and x != y and _classes(between) & _classes(between_b):
                return [f"{x} -> {y} / {x_b} -> {y_b}"]
    return []


def _swapped(a: Facts, b: Facts) -> list[str]:
    """A word put in another's place in an otherwise unchanged headline: "UK economy
    grows" / "German economy grows", "raise output" / "cut output". That is how a fact
    changes when the lists do not know the word; a rewrite changes more than one word,
    or swaps words the lists make one (synonyms), so a lone unknown swap is a new fact."""
    if not a.order or not b.order or a.order == b.order:
        return []
    # A swap needs a word on each side the other does not say.
    if all(_says(b, x) or _number(x) for x in a.order) or all(
        _says(a, y) or _number(y) for y in b.order
    ):
        return []
    matcher = SequenceMatcher(None, a.order, b.order, autojunk=False)
    kept = sum(block.size for block in matcher.get_matching_blocks())
    # Only where most of the headline is unchanged: the shape of a one-fact change.
    if kept * 2 < max(len(a.order), len(b.order)):
        return []
    names_a = {k for n in a.names for k in n.keys}
    names_b = {k for n in b.names for k in n.keys}
    # A name the other headline states otherwise ("OEA" / "Organización de Estados
    # Americanos", "Zelensky" / "Zelenskiy") is no swap.
    known = {
        k
        for n, own, other in [*((n, a, b) for n in a.names), *((n, b, a) for n in b.names)]
        for k in n.keys
        if _key_present(k, other) or _abbreviated(n, other) or _expanded(n, own, other)
    } | _nested(a, b, a.names, b.names)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "replace" or i2 - i1 > 2 or j2 - j1 > 2:
            continue
        xs = [x for x in a.order[i1:i2] if not _says(b, x) and not _number(x) and x not in known]
        ys = [y for y in b.order[j1:j2] if not _says(a, y) and not _number(y) and y not in known]
        if not xs or not ys or any(_related(x, y) for x in xs for y in ys):
            continue  # moved or reworded, not swapped
        # A name for a name ("Bint Jbeil" / "Tyre"), or one word for one word; not a
        # name for a word: "US President" for "Trump" is a title.
        if any(x in names_a for x in xs) and any(y in names_b for y in ys):
            return sorted(xs + ys)
        if len(xs) == len(ys) == 1 == i2 - i1 == j2 - j1 and not names_a & {*xs} | names_b & {*ys}:
            return sorted(xs + ys)
    # The same slot, wherever the rest moved: "Lula y Milei" / "Lula y Boric", "fires
    # ballistic missile" / "launched a cruise missile" (the word before or after agrees).
    only_a = [
        i for i, x in enumerate(a.order) if not _says(b, x) and not _number(x) and x not in known
    ]
    only_b = [
        j for j, y in enumerate(b.order) if not _says(a, y) and not _number(y) and y not in known
    ]
    for i in only_a:
        for j in only_b:
            x, y = a.order[i], b.order[j]
            if (x in names_a) != (y in names_b) or _related(x, y):
                continue
            after = (
                i + 1 < len(a.order)
                and j + 1 < len(b.order)
                and a.order[i + 1] == b.order[j + 1]
                and not _number(a.order[i + 1])
            )
            before = (
                i > 0 and j > 0 and a.order[i - 1] == b.order[j - 1] and not _number(a.order[i - 1])
            )
            if x in names_a:
                # A name beside a shared word that is not part of it ("Lula y Milei" /
                # "Lula y Boric"; not "Javier Milei" / "Avanza, de Milei").
                after = after and not _one_name(a, x, a.order[i + 1])
                before = before and not _one_name(a, x, a.order[i - 1])
            elif a.lang == "en":
                before = False  # English puts the modifier first: "ballistic missile"
            else:
                after = False  # Spanish and Arabic after: "misil balístico"
            if before or after:
                return sorted((x, y))
    return []


def _contradicts(negated: Facts, other: Facts) -> bool:
    """Whether a negation on one side only denies what the other says: "will not attend
    the summit" / "will attend the summit", but not "quake hits, no tsunami warning" /
    "quake hits" (the other says nothing of a tsunami)."""
    if not negated.denied:
        return True
    said = set(other.content) | other.events | other.numbers
    return bool(negated.denied & said)


def _same_word(x: str, y: str) -> bool:
    """One word in two forms the stemmer leaves apart: a name and its adjective
    ("Tanzania" / "Tanzanian"), a spelling ("Zelensky" / "Zelenskiy"), or an event word
    of two classes and one of them ("sinks": "crash|fall" / "crash")."""
    if "|" in x or "|" in y:
        return bool(set(x.split("|")) & set(y.split("|")))
    if x[:1] != y[:1] or _two_places(x, y):
        return False
    short, long = sorted((x, y), key=len)
    if len(short) >= 4 and long.startswith(short) and len(long) - len(short) <= 2:
        return True
    return len(short) >= 6 and fuzz.ratio(x, y) >= 85


def _overlap(a: Facts, b: Facts) -> tuple[float, float]:
    """(score 0-100, the weight of what both say): a rarity-weighted Dice overlap."""
    shared = sum(min(w, b.content[k]) for k, w in a.content.items() if k in b.content)
    # Words left on each side may still be one word in two forms: pair them once each.
    left_a = [k for k in a.content if k not in b.content]
    left_b = [k for k in b.content if k not in a.content]
    for k in list(left_a):
        for other in left_b:
            if _same_word(k, other):
                shared += min(a.content[k], b.content[other])
                left_a.remove(k)
                left_b.remove(other)
                break
    # ... or an abbreviation and the name it stands for ("BOJ" / "Bank of Japan").
    for x, y, left_x, left_y in ((a, b, left_a, left_b), (b, a, left_b, left_a)):
        names_y = {k for n in y.names for k in n.keys}
        for n in x.names:
            key = n.keys[0] if n.keys else ""
            if key not in left_x or not _acronym(n.text) or not _abbreviated(n, y):
                continue
            named = [k for k in left_y if k in names_y]
            if named:
                best = max(named, key=lambda k: y.content[k])
                shared += min(x.content[key], y.content[best])
                left_x.remove(key)
                left_y.remove(best)
    total = sum(a.content.values()) + sum(b.content.values())
    return (200.0 * shared / total if total else 100.0), shared


def compare(a: Facts, b: Facts, threshold: float = THRESHOLD) -> Verdict:
    """The verdict on two headlines' facts; symmetric in ``a`` and ``b``."""
    veto = _veto(a, b)  # symmetric: the one-sided checks look both ways
    if veto is not None:
        reason, differing = veto
        return Verdict(False, 0.0, f"different {reason}", [], differing)
    score, in_common = _overlap(a, b)
    # Two short headlines that share one common word ("Health item" / "Politics item")
    # are not one story: a match shares at least a name, or events and rare words.
    same = score >= threshold and in_common >= MIN_SHARED
    shared = sorted(
        [f"number {n}" for n in a.numbers & b.numbers]
        + [f"event {e}" for e in a.events & b.events]
        + [f"name {n.text}" for n in a.names if _present(n, b)]
    )
    differing = sorted(set(a.content) ^ set(b.content))
    reason = "same facts" if same else "other words"
    return Verdict(same, score, reason, shared, differing)

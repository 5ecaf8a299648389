"""The facts of a headline, for story matching; pure, no I/O.

A headline is reduced once, when its item is accepted, to what makes it a story:

- **numbers**: digits in any script, number words, decimal comma or point ("6,1" is 6.1,
  "1.500" and "1,500" are 1500, "7.0" is 7), "%"/"percent" dropped, ordinals ("second",
  "2nd", "1ª") kept apart;
- **names**: places, people, organisations. In cased text a capitalised word mid-sentence;
  where case says nothing (Arabic, Title Case, ALL CAPS, the first word) an uncommon word
  (wordfreq) in none of the word lists. Consecutive name words are one name, which is
  present in another headline when any of its distinctive words is ("Jair Bolsonaro");
  a country before a title, a name or an institution ("US President Trump", "Brazil's Sao
  Paulo", "French police") is a qualifier, not a fact; names in an attribution ("...,
  Kremlin says", "según el INDEC") are the source;
- **events**: classes from the word lists (killed, wounded, arrested...), each with its
  actor and target where word order shows them ("Israel strikes Iran"); a word of two
  classes keeps both ("cut": "fall|layoff"); the circumstances among them ("blast",
  "school") a rewrite may leave out;
- **polarity**: a negation outside the attribution, and the words it covers ("no tsunami
  warning": what did not happen is no event);
- **content**: every other word, stemmed, canonical for synonyms, weighted by rarity, and
  in headline order (``order``) for the matcher's swap checks.

:mod:`workers.matching` compares two of these. ``Facts`` round-trips through JSON so a
worker computes them once and keeps them beside the item.
"""

# Arabic letters, dashes and quotes are the subject matter here, not look-alike typos.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from workers.gazetteer import place
from workers.normalise import display_headline, strip_alert_prefix
from workers.vocab import Vocabulary, fold, vocabulary

__all__ = ["Facts", "Name", "extract"]

_SLUG = re.compile(
    # A wire slug is upper case ("SOCCER-"); "Twenty-five killed" opens with a number.
    r"^\s*(?:(?-i:[A-Z]{3,}(?:/[A-Z]+)?)-(?=\S)|(?:exclusive|factbox|analysis|update \d+|urgent|"
    r"breaking|flash|exclusiva|urgente|عاجل|خاص)\s*[:|\-–]\s*)",
    re.IGNORECASE,
)
_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
# Every decimal digit of the BMP (Arabic-Indic, Devanagari...) as ASCII; Arabic separators.
_DIGITS = {
    c: str(unicodedata.decimal(chr(c))) for c in range(0x80, 0x10000) if chr(c).isdecimal()
} | {ord("٫"): ".", ord("٬"): ",", ord("٪"): "%", ord("،"): ","}
_AR_ORDINAL = re.compile(r"(?<![\w])ال\s?(\d{1,2})(?!\d)")
_AR_ORDINALS = {"1": "الأول", "2": "الثاني", "3": "الثالث", "4": "الرابع", "5": "الخامس"}
_ABBREV = re.compile(r"\b(?:[A-Za-z]\.){2,}")
# "US$5bn" is "$5bn": the currency, no country named.
_US_DOLLAR = re.compile(r"\b(?:US|U\.S\.)\s?\$")
_MAGNITUDE = re.compile(r"\b[Mm](?=\d)")
_TOKEN = re.compile(
    r"(?P<num>\d+(?:[.,]\d+)*+(?:[kKmM]|mn|bn|MN|BN)?(?![^\W_]))"
    r"|(?P<word>[^\W_]+(?:['’][^\W\d_]+)*)"
    r"|(?P<sep>[,;:()\[\]|«»]|(?<=\s)[-–—]|[-–—](?=\s))",
)
# "1st", "2nd", "19th"; "1º", "2ª", "3er", "1ero", "2do" (Spanish ordinal endings).
_ORDINAL = re.compile(
    r"(\d{1,3})(?:st|nd|rd|th|º|ª|er|ero|era|do|da|to|ta|vo|va|no|na|mo|ma)", re.I
)
_ORDINAL_MARKS = {"º", "ª"}
_SUFFIX = re.compile(r"(k|m|mn|bn)$")
_SEPARATOR = re.compile(r"[.,]")
_SCALE = {"k": 1000, "m": 10**6, "mn": 10**6, "bn": 10**9}
_CONNECTORS = {"and", "y", "e", "و"}
_FACT_KINDS = {"events", "number", "negation"}
_PASSIVE = {"by", "por"}
_ALA = fold("على")
_CONTEXT_PREPOSITIONS = {"in", "to", "en", "a"} | {
    fold(w) for w in ("في", "شمال", "جنوب", "شرق", "غرب", "شمالي", "جنوبي", "شرقي", "غربي")
}
# A past participle: "downed", "shot", "derribados", "interceptada".
_PARTICIPLE = re.compile(r"(?:ed|shot|struck|hit|down|[ai]d[oa]s?)$")
_SOURCE_WORDS = {
    "segun", "according", "citing", "cites", "per",
    *(fold(w) for w in ("وفق", "وفقا", "بحسب", "حسب", "نقلا")),
}  # fmt: skip
# A Spanish headline may open with a participle ("Detenido un hombre...", "Desarticulada
# una red..."): capitalised, uncommon, and no name.
_ES_PARTICIPLE = re.compile(r"(?:ad|id)(?:o|a|os|as)$")
_LOCATIVE = {"in", "at", "near", "en", "cerca"}
_VENUE = {fold("في")}
_ATTRIBUTION_VERBS = {
    "say", "said", "says", "tell", "told", "report", "accord", "cite", "dice", "segun",
    *(fold(w) for w in ("وفق", "وفقا", "بحسب", "حسب", "قال", "قالت", "أفاد", "أفادت", "نقلا")),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Name:
    """One name: its distinctive keys, and whether it is only a source or context."""

    keys: tuple[str, ...]
    text: str
    source: bool = False  # in an attribution or parentheses: who says it
    place: bool = False  # context a rewrite may leave out ("in Ukraine", "Supreme Court")
    # Where nothing shows a name (Arabic has no letter case) any other word may be one:
    # two that differ are a swap, one that is added is not news by itself.
    maybe: bool = False


@dataclass(frozen=True, slots=True)
class Facts:
    numbers: frozenset[str]
    names: tuple[Name, ...]
    events: frozenset[str]
    actors: frozenset[tuple[str, str, str]]  # (event, actor, target); "" when not shown
    passive: bool
    negated: bool
    titles: frozenset[str]  # roles named outside the attribution ("foreign minister")
    content: dict[str, float]  # canonical word -> rarity weight
    words: frozenset[str]  # every folded word, stem and canonical form: presence of names
    # The words a negation covers ("no tsunami warning", "will not attend the summit");
    # empty with a negation: it covers the whole headline.
    denied: frozenset[str] = frozenset()
    # The events that only say how, where or with what (a rewrite may leave them out).
    means: frozenset[str] = frozenset()
    # The content keys in headline order, outside the attribution: a word swapped for
    # another in an otherwise unchanged headline shows there.
    order: tuple[str, ...] = ()
    lang: str = ""  # the lists' language: where a modifier stands beside its head
    # (role, the key of the name it qualifies): "President Xi" / "Chinese leader Xi" name
    # one person by two roles.
    titled: frozenset[tuple[str, str]] = frozenset()
    # ``words`` by first letter, for the matcher's spelling-drift search (not stored).
    by_letter: dict[str, tuple[str, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # Every class of the events, a word of two ("rise|lift") giving both (not stored).
    classes: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        groups: dict[str, list[str]] = {}
        for word in self.words:
            groups.setdefault(word[:1], []).append(word)
        object.__setattr__(self, "by_letter", {k: tuple(v) for k, v in groups.items()})
        classes = frozenset(c for e in self.events for c in e.split("|"))
        object.__setattr__(self, "classes", classes)

    def to_json(self) -> dict[str, Any]:
        return {
            "numbers": sorted(self.numbers),
            "names": [[list(n.keys), n.text, n.source, n.place, n.maybe] for n in self.names],
            "events": sorted(self.events),
            "actors": sorted(self.actors),
            "passive": self.passive,
            "negated": self.negated,
            "titles": sorted(self.titles),
            "content": self.content,
            "words": sorted(self.words),
            "denied": sorted(self.denied),
            "means": sorted(self.means),
            "order": list(self.order),
            "lang": self.lang,
            "titled": sorted(self.titled),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Facts:
        return cls(
            numbers=frozenset(doc["numbers"]),
            names=tuple(Name(tuple(k), t, s, p, m) for k, t, s, p, m in doc["names"]),
            events=frozenset(doc["events"]),
            actors=frozenset(tuple(a) for a in doc["actors"]),  # type: ignore[misc]
            passive=doc["passive"],
            negated=doc["negated"],
            titles=frozenset(doc["titles"]),
            content=doc["content"],
            words=frozenset(doc["words"]),
            denied=frozenset(doc.get("denied", ())),
            means=frozenset(doc.get("means", ())),
            order=tuple(doc.get("order", ())),
            lang=doc.get("lang", ""),
            titled=frozenset(tuple(t) for t in doc.get("titled", ())),  # type: ignore[misc]
        )


@dataclass(slots=True, eq=False)
class _Tok:
    surface: str
    folded: str
    stem: str
    segment: int
    raw: str = ""  # the surface folded, clitics and all
    cap: bool = False
    poss: bool = False
    kind: str = ""  # a lexicon section, "number", "name" or "" (a plain content word)
    canon: str = ""


def _clean(text: str, lang: str) -> str:
    # Arabic harakat would split words ("مسيّرة"); they are optional in writing anyway.
    text = _ARABIC_MARKS.sub("", strip_alert_prefix(display_headline(text), lang))
    while (stripped := _SLUG.sub("", text, count=1)) != text and stripped.strip():
        text = stripped
    text = _ABBREV.sub(lambda m: m.group().replace(".", ""), text.translate(_DIGITS))
    # Arabic writes "the 3rd" as "الـ3" (tatweel gone: "ال3"): an ordinal.
    text = _AR_ORDINAL.sub(lambda m: _AR_ORDINALS.get(m.group(1), m.group(0)), text)
    return _MAGNITUDE.sub("", _US_DOLLAR.sub("$", text))


def _number(raw: str, lang: str) -> str:
    """A numeral's value as a plain decimal string ("1,500" -> "1500", "6,1" -> "6.1")."""
    scale = 1
    if m := _SUFFIX.search(raw):
        scale, raw = _SCALE[m.group(1)], raw[: m.start()]
    parts = _SEPARATOR.split(raw)
    seps = _SEPARATOR.findall(raw)
    # Groups of exactly three digits after a separator are thousands ("1,500", "1.500");
    # anything else after the last separator is a decimal part ("6,1", "4.25").
    if (
        len(parts) > 1
        and all(len(p) == 3 for p in parts[1:])
        and not (len(parts) == 2 and lang == "en" and seps[0] == ".")
    ):
        value = Decimal("".join(parts))
    elif len(parts) > 1:
        value = Decimal("".join(parts[:-1]) + "." + parts[-1])
    else:
        value = Decimal(raw)
    return _plain(value * scale)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _tokens(text: str, vocab: Vocabulary) -> tuple[list[_Tok], set[int], bool]:
    """Tokens with their segment (split at punctuation); asides in parentheses; whether
    the first segment ends with a colon ("Kremlin: ...")."""
    toks: list[_Tok] = []
    segment, first_colon, depth = 0, False, 0
    paren: set[int] = set()
    for m in _TOKEN.finditer(text):
        if m.lastgroup == "sep":
            sep = m.group()
            first_colon = first_colon or (sep == ":" and segment == 0)
            depth += sep in "(["
            segment += 1
            if depth:
                paren.add(segment)
            if sep in ")]":
                depth = max(0, depth - 1)
            continue
        raw = m.group()
        poss = False
        if m.lastgroup == "word" and raw[-2:] in ("'s", "’s"):
            raw, poss = raw[:-2], True
        folded = fold(raw.replace("'", "").replace("’", ""))
        form, stem = vocab.analyse(folded)
        tok = _Tok(raw, form, stem, segment, folded, cap=raw[:1].isupper(), poss=poss)
        if m.lastgroup == "num":
            tok.kind, tok.canon = "number", _number(raw.lower(), vocab.lang)
        elif ordinal := _ORDINAL.fullmatch(raw):
            tok.kind, tok.canon = "number", f"#{int(ordinal.group(1))}"  # "2nd", "1ª"
        elif raw in _ORDINAL_MARKS and toks and toks[-1].kind == "number" and "." not in raw:
            toks[-1].canon = f"#{toks[-1].canon}"  # "1.ª": the number is an ordinal
            continue
        toks.append(tok)
    return toks, paren, first_colon


def _attribution_segments(toks: list[_Tok], first_colon: bool, paren: set[int]) -> set[int]:
    """Segments that name the source: "Kremlin: ...", "..., Kremlin says", "... - JMA"."""
    by_seg: dict[int, list[_Tok]] = {}
    for t in toks:
        by_seg.setdefault(t.segment, []).append(t)
    segs = sorted(by_seg)
    out = set(paren)
    head = by_seg[segs[0]] if segs else []
    # "Kremlin: ..." names the source; "Michigan church shooting: ..." is the story.
    sourced = not {t.kind for t in head} & _FACT_KINDS
    if first_colon and len(segs) > 1 and len(head) <= 4 and sourced:
        out.add(segs[0])
    for seg in segs[1:]:
        kinds = {t.kind for t in by_seg[seg]}
        words = {t.folded for t in by_seg[seg]} | {t.stem for t in by_seg[seg]}
        short_tail = seg == segs[-1] and len(by_seg[seg]) <= 3
        sourced = "attribution" in kinds and not kinds & _FACT_KINDS
        # "..., officials say" names the source; "; no casualties reported" is a fact.
        facts = kinds & _FACT_KINDS
        if (
            (words & _ATTRIBUTION_VERBS and "negation" not in kinds)
            or sourced
            or (short_tail and not facts)
        ):
            out.add(seg)
    return out


def _numbers(toks: list[_Tok], vocab: Vocabulary) -> frozenset[str]:
    # A run of number words (and a numeral they scale: "5 mil", "2,5 millones") is one value.
    found: set[str] = set()
    total, current, in_run = Decimal(0), Decimal(0), False

    def flush() -> None:
        nonlocal total, current, in_run
        if in_run:
            found.add(_plain(total + current))
        total, current, in_run = Decimal(0), Decimal(0), False

    for i, t in enumerate(toks):
        if _is_percent(toks, i):
            t.kind = "stopwords"  # "4 percent" is "4%": the number is the fact
            flush()
            continue
        word = vocab.numbers.get(t.folded) if t.kind != "number" else None
        if t.kind == "number" and t.canon.startswith("#"):
            flush()
            found.add(t.canon)  # "2nd", "1ª": an ordinal, apart from counts
        elif t.kind == "number":
            flush()
            current, in_run = Decimal(t.canon), True
        elif word is not None and word[0] in "~#":
            flush()
            found.add(word)
            t.kind, t.canon = "number", word
        elif word is not None:
            t.kind, t.canon = "number", word
            value = Decimal(word)
            if value == 100:
                current = (current or Decimal(1)) * 100
            elif value >= 1000:
                if current or not total:
                    total, current = (total + (current or Decimal(1))) * value, Decimal(0)
                else:
                    total *= value  # "10 mil millones": the thousands scaled again
            else:
                current += value
            in_run = True
        elif not (in_run and t.folded in _CONNECTORS):
            flush()
    flush()
    return frozenset(found)


# "percent", "por ciento"; Arabic "في المئة", "بالمئة" (as folded: ة is ه, ئ is ي).
_PERCENT = {fold(w) for w in ("percent", "pct", "بالمئة", "بالمائة")}
_PERCENT_AFTER = {(fold(a), fold(b)) for a, b in (("per", "cent"), ("por", "ciento"))} | {
    (fold("في"), fold(w)) for w in ("المئة", "المائة")
}


def _is_percent(toks: list[_Tok], i: int) -> bool:
    word = toks[i].raw
    before = toks[i - 1].raw if i else ""
    return word in _PERCENT or (before, word) in _PERCENT_AFTER


def _rewrite(toks: list[_Tok], vocab: Vocabulary) -> list[_Tok]:
    """Phrases replaced by others ("balotaje" -> "segunda vuelta"), longest first."""
    out: list[_Tok] = []
    i = 0
    while i < len(toks):
        if toks[i].stem not in vocab.starts and (toks[i].stem,) not in vocab.rewrites:
            out.append(toks[i])  # the common case: no phrase starts here
            i += 1
            continue
        for n in range(min(vocab.longest, len(toks) - i), 0, -1):
            key = tuple(t.stem for t in toks[i : i + n])
            if key in vocab.rewrites and toks[i].kind != "number":
                for w in vocab.rewrites[key]:
                    form, stem = vocab.analyse(w)
                    out.append(_Tok(w, form, stem, toks[i].segment, w, cap=toks[i].cap))
                i += n
                break
        else:
            out.append(toks[i])
            i += 1
    return out


def _label(out: list[_Tok], vocab: Vocabulary) -> list[_Tok]:
    """Each token's lexicon kind and canonical form, longest phrase first."""
    i = 0
    while i < len(out):
        if out[i].kind == "number":
            i += 1
            continue
        if out[i].stem not in vocab.starts:
            if hit := vocab.phrases.get((out[i].stem,)):
                out[i].kind, out[i].canon = hit
            i += 1
            continue
        for n in range(min(vocab.longest, len(out) - i), 0, -1):
            hit = vocab.phrases.get(tuple(t.stem for t in out[i : i + n]))
            if hit:
                head = out[i]
                head.kind, head.canon = hit
                head.cap = any(t.cap for t in out[i : i + n])
                head.poss = out[i + n - 1].poss
                del out[i + 1 : i + n]
                break
        i += 1
    return out


def _case_informative(toks: list[_Tok], text: str, vocab: Vocabulary) -> bool:
    # Title Case and ALL CAPS make every word look like a name; short words and function
    # words are left out of the vote because Title Case styles keep them lower case. One
    # other word in lower case is sentence case: "El Real Madrid gana al Barcelona".
    if text.upper() == text:
        return False
    cased = [
        t
        for t in toks[1:]
        if len(t.surface) > 3
        and t.surface[:1].isalpha()
        and vocab.phrases.get((t.stem,), ("",))[0] != "stopwords"
    ]
    upper = [t for t in cased if t.cap]
    return len(cased) < 2 or len(upper) < len(cased)


def extract(headline: str, lang: str) -> Facts:
    """The facts of one display headline in the edition's language."""
    vocab = vocabulary(lang)
    text = _clean(headline, vocab.lang)
    toks, paren, first_colon = _tokens(text, vocab)
    cased = vocab.lang != "ar" and _case_informative(toks, text, vocab)
    toks = _rewrite(toks, vocab)
    numbers = _numbers(toks, vocab)
    passive = _passive(toks)
    toks = _label(toks, vocab)
    attribution = _attribution_segments(toks, first_colon, paren)
    for i, t in enumerate(toks):
        if t.kind:
            continue
        rare = vocab.rarity(t.folded) >= 3.5 and not t.folded.isdigit()
        if cased and t.surface[:1].isalpha() and t.surface[:1] != t.surface[:1].lower():
            # Capitalised: a name mid-sentence; the first word only if it is uncommon.
            # The headline's first word, or the first after "Kremlin:"; after a comma
            # a capital still says name ("..., Michigan, police say").
            first = i == 0 or (first_colon and t.segment == 1 and toks[i - 1].segment == 0)
            if first and vocab.lang == "es" and _ES_PARTICIPLE.search(t.folded):
                continue
            if not first or rare or place(t.folded):
                t.kind, t.canon = "name", t.folded
        elif (
            vocab.lang == "ar"
            and len(t.folded) > 2
            and not t.folded.isdigit()
            and t.stem not in vocab.generic
            and not _AR_NOT_NAME.search(t.raw)
        ):
            # No letter case: every word outside the lists may be a name (غزة is common).
            # Its stem: the same word with another clitic or suffix ("سيطرتها" / "السيطرة").
            t.kind, t.canon = "name", t.stem
        elif not cased and (rare or place(t.folded)) and len(t.folded) > 1 and vocab.lang != "ar":
            t.kind, t.canon = "name", t.folded
    names = _names(toks, vocab, attribution, paren)
    main = [t for t in toks if t.segment not in attribution]
    denied = _denied(main)
    # What a negation covers did not happen: "quake hits, no casualties" has no deaths.
    events = frozenset(t.canon for t in main if t.kind == "events" and id(t) not in denied)
    titles = frozenset(t.canon for t in main if t.kind == "titles" and t.canon != "-")
    titled = _titled(main)
    negated = any(t.kind == "negation" for t in main)
    content: dict[str, float] = {}
    words: set[str] = set()
    for t in toks:
        words.update((t.folded, t.stem, t.canon or t.stem, *vocab.forms(t.raw or t.folded)))
        if t.kind in ("", "events", "synonyms", "name", "places", "aliases", "dates"):
            key = t.canon if t.kind else t.stem
            weight = 4.0 if t.kind in ("name", "places", "aliases", "dates") else 2.0
            if not t.kind:
                weight = max(0.5, vocab.rarity(t.folded) - 2.0)
            elif t.kind == "name" and vocab.lang == "ar":
                # An Arabic "name" is any word outside the lists: weigh it by its rarity.
                weight = max(1.0, vocab.rarity(t.surface) - 2.0)
            content[key] = max(content.get(key, 0.0), weight)
    # A country as the source ("Ukrainian air force: ...", "..., Israel says") may be the
    # actor the main clause leaves out.
    sources = {t.canon for t in toks if t.segment in attribution and t.kind == "places"}
    actors = _actors(main, vocab, next(iter(sources)) if len(sources) == 1 else "")
    return Facts(
        numbers=numbers,
        names=names,
        events=events,
        actors=actors,
        passive=passive,
        negated=negated,
        titles=titles,
        content=content,
        words=frozenset(w for w in words if w),
        denied=frozenset(t.canon if t.kind else t.stem for t in main if id(t) in denied),
        means=_means(events, vocab),
        lang=vocab.lang,
        titled=titled,
        order=tuple(
            t.canon if t.kind else t.stem
            for t in main
            if t.kind in ("", "events", "synonyms", "name", "places", "aliases", "dates", "number")
        ),
    )


def _means(events: frozenset[str], vocab: Vocabulary) -> frozenset[str]:
    """The events a rewrite may leave out: circumstances ("blast", "school"); a toll that
    "rises to" a number beside the deaths themselves ("toll rises to 45" / "45 killed",
    the number tells whether it changed); a market that "closes" up or down; what "leaves"
    people dead, hurt, missing or homeless ("quake leaves 5 dead" / "quake kills 5")."""
    classes = {c for e in events for c in e.split("|")}
    out = set()
    for e in events:
        parts = set(e.split("|"))
        toll = "rise" in parts and bool(classes & {"kill", "wound"})
        market = "close" in parts and bool(classes & {"rise", "fall"})
        left = parts == {"leave"} and bool(classes & {"kill", "wound", "missing", "displace"})
        if parts <= vocab.circumstances or toll or market or left:
            out.add(e)
    return frozenset(out)


_SCOPE = 4  # content words a negation covers, within its clause


def _denied(main: list[_Tok]) -> set[int]:
    """The tokens each negation covers: the next content words of its clause."""
    out: set[int] = set()
    for i, t in enumerate(main):
        if t.kind != "negation":
            continue
        covered = 0
        for n in main[i + 1 :]:
            if n.segment != t.segment or covered == _SCOPE:
                break
            if n.kind in ("", "events", "synonyms", "name", "places", "aliases", "dates", "number"):
                # What did not happen, not where or to whom: "deja sin luz a toda España"
                # denies power, not Spain; "no tsunami in Japan" still names Japan.
                if n.kind in ("", "events", "synonyms"):
                    out.add(id(n))
                covered += 1
    return out


# Arabic word shapes that are no name: an attached pronoun ("بلادهم" their country,
# "سيطرتها" its control), a verb in the plural ("عادوا" they returned, "يهاجمون").
_AR_NOT_NAME = re.compile("(?:^.{3,}(?:هم|هما|كم|نا|ها)$)|(?:^.{2,}وا$)|(?:^[يت].{2,}(?:ون|ان)$)")


def _passive(toks: list[_Tok]) -> bool:
    """ "hit by Russian drones", "sentenced by Brazil's top court": word order no longer
    says who did it. Not "beat Australia by eight wickets"."""
    for i, t in enumerate(toks):
        after = toks[i + 1 : i + 4]
        if t.raw in _PASSIVE and after and after[0].kind != "number" and any(n.cap for n in after):
            return True
    return False


_TITLE_JOINERS = frozenset({"of", "de", "del", "the", "el", "la"})


def _titled(main: list[_Tok]) -> frozenset[tuple[str, str]]:
    """Each role with the name right after it, a country or a word between allowed:
    "President Xi", "Chinese leader Xi", "el presidente de EEUU, Donald Trump"."""
    out = set()
    for i, t in enumerate(main):
        if t.kind != "titles" or t.canon == "-":
            continue
        for n in main[i + 1 : i + 4]:
            if n.kind in ("name", "aliases"):
                out.add((t.canon, n.canon))
                break
            if n.kind != "places" and n.folded not in _TITLE_JOINERS:
                break
    return frozenset(out)


def _is_name(t: _Tok) -> bool:
    return t.kind in ("name", "places", "aliases", "dates")


def _names(
    toks: list[_Tok], vocab: Vocabulary, attribution: set[int], paren: set[int]
) -> tuple[Name, ...]:
    groups: list[list[_Tok]] = []
    i = 0
    while i < len(toks):
        if not _is_name(toks[i]):
            i += 1
            continue
        group = [toks[i]]
        j = i + 1
        # Without letter case nothing says where an Arabic name ends: each word stands alone.
        while vocab.lang != "ar" and j < len(toks) and toks[j].segment == toks[i].segment:
            if _is_name(toks[j]) and not group[-1].poss and toks[j].kind != "dates":
                group.append(toks[j])
            elif (
                toks[j].folded in vocab.joiners
                and j + 1 < len(toks)
                and _is_name(toks[j + 1])
                and toks[j + 1].cap
            ):
                pass
            else:
                break
            j += 1
        groups.append(group)
        i = j
    names = []
    for group in groups:
        last = group[-1]
        places = all(t.kind == "places" or t.canon in ("eu", "ue") for t in group)
        # ... and an organisation that names a role: "OPEC leader Saudi Arabia", "UN chief".
        org = all(t.kind == "aliases" for t in group)
        if (places or org) and _qualifier(toks, toks.index(group[0]), toks.index(last), vocab):
            continue
        keys = [t.canon for t in group if t.stem not in vocab.generic] or [t.canon for t in group]
        first_tok = toks.index(group[0])
        # "..., sin víctimas según el IGP", "according to the WHO": who says it.
        cited = any(
            t.folded in _SOURCE_WORDS and t.segment == group[0].segment
            for t in toks[max(0, first_tok - 3) : first_tok]
        )
        source = last.segment in attribution or last.segment in paren or cited
        text = " ".join(t.surface for t in group)
        # A country is context only as "in Ukraine": "Iranian drone makers" is a fact.
        first = toks.index(group[0])
        # ... or trailing, after a comma: "..., among them several Spaniards".
        context = (
            places
            and (
                (first > 0 and toks[first - 1].folded in _CONTEXT_PREPOSITIONS)
                or group[0].segment > toks[0].segment
                # Arabic: "بالضفة" (in the West Bank), a preposition joined to the name.
                or (
                    vocab.lang == "ar"
                    and group[0].raw[:1] in "بل"
                    and group[0].folded[:1] not in "بل"
                )
            )
        )
        # "in Grand Blanc, Michigan": a town named before the place that holds it is where
        # it happened, which a rewrite may leave at "Michigan" (another town still differs).
        last_i = toks.index(last)
        town = (
            first > 0
            and toks[first - 1].folded in _LOCATIVE
            and last_i + 1 < len(toks)
            and toks[last_i + 1].segment == last.segment + 1
            and _is_name(toks[last_i + 1])
        )
        # "talks in Doha", "at the UN": a town or an organisation as the venue is where.
        venue = (
            first > 0
            and toks[first - 1].folded in _LOCATIVE | _VENUE
            and all(t.kind in ("places", "aliases") or place(t.folded) for t in group)
        )
        context = context or town or venue
        # A name of generic words only ("Audiencia Nacional", "Supreme Court") is an
        # institution a rewrite may leave out; another one in its place still differs.
        generic = all(t.stem in vocab.generic and t.kind == "name" for t in group)
        # ... unless a word such as "camp" or "city" says it is one ("مخيم نور شمس").
        pos = toks.index(group[0])
        named = pos > 0 and toks[pos - 1].stem in vocab.namers
        maybe = vocab.lang == "ar" and not named and all(t.kind == "name" for t in group)
        names.append(Name(tuple(dict.fromkeys(keys)), text, source, context or generic, maybe))
    return tuple(names)


def _qualifier(toks: list[_Tok], first: int, last: int, vocab: Vocabulary) -> bool:
    """A country that qualifies a title, a name or an institution: "US President",
    "Brazil's Sao Paulo", "the Ukrainian capital", "el presidente de EEUU", "French
    police", "el Ejército israelí"."""
    after = toks[last + 1] if last + 1 < len(toks) else None
    joined = after is not None and after.segment == toks[last].segment
    if vocab.lang != "ar":
        # An institution is named by its country; another country's still differs. Not
        # Arabic, where the adjective after "the army" is how the actor is named.
        if joined and after is not None and after.stem in vocab.institutions and not after.cap:
            return True
        prev = toks[first - 1] if first > 0 else None
        if (
            prev is not None
            and prev.segment == toks[first].segment
            and prev.stem in vocab.institutions
            and vocab.lang == "es"
        ):
            return True
    if (
        joined
        and after is not None
        and (after.kind == "titles" or (toks[last].poss and _is_name(after)))
    ):
        return True
    before = [t for t in toks[max(0, first - 2) : first] if t.segment == toks[first].segment]
    if before and before[-1].kind == "stopwords" and len(before) == 2:
        before = before[:1]  # "presidente de EEUU"
    # After a title only when a name follows: "la capital ucraniana, Kiev" but not
    # "la capital de Guatemala", which is where it happened. Arabic puts the adjective
    # after its noun: "العاصمة السورية" is "the Syrian capital".
    named = after is not None and _is_name(after)
    arabic = toks[first].raw[:2] == "ال" and not toks[first].poss
    return bool(before) and before[-1].kind == "titles" and (named or arabic)


def _actors(
    main: list[_Tok], vocab: Vocabulary, source: str = ""
) -> frozenset[tuple[str, str, str]]:
    """(event, actor, target) for transitive events where they show: in English and
    Spanish the nearest names either side, a participle's name being its target and the
    country that says it the actor otherwise; in Arabic the adjective after the event
    noun and the name after "على" ("الضربات الإسرائيلية على إيران")."""
    found = set()
    seen: set[str] = set()
    for t in main:
        # The first mention of an event is the headline's: "beats Alcaraz to win title".
        if t.kind != "events" or t.canon in seen or not set(t.canon.split("|")) & vocab.transitive:
            continue
        seen.add(t.canon)
        same = [m for m in main if m.segment == t.segment]
        k = same.index(t)
        if vocab.lang == "ar":
            nxt = same[k + 1] if k + 1 < len(same) else None
            actor = nxt.canon if nxt is not None and nxt.kind == "places" else ""
            on = next((j for j in range(k + 1, len(same)) if same[j].folded == _ALA), None)
            target = next((m.canon for m in same[on + 1 :] if _is_name(m)), "") if on else ""
        else:
            actor = next((m.canon for m in reversed(same[:k]) if _is_name(m)), "")
            target = next((m.canon for m in same[k + 1 :] if _is_name(m)), "")
            reported = any(m.kind == "attribution" for m in same[:k])
            if not target and not reported and _PARTICIPLE.search(t.surface.lower()):
                # "Russian drones downed", "drones rusos derribados": what was done to
                # (but "Seoul says Pyongyang launched...": a past tense, reported).
                actor, target = "", actor
            # Who says it did it: "Ukrainian air force: ... drones downed".
            actor = actor or source
        # Arabic word order is freer: only a full (actor, target) pair is trusted there.
        if (actor and target) or (vocab.lang != "ar" and (actor or target)):
            found.add((t.canon, actor, target))
    return frozenset(found)

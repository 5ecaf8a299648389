"""How the story matcher may do on stories it was not tuned on, estimated on dev alone.

The word lists were written while reading ``tests/data/stories/dev.jsonl``, so the dev
figures are in-sample. This script runs a story-grouped k-fold cross-validation inside
dev: for each fold, every word-list variant whose only dev occurrences are in that fold's
stories is removed (an entry nobody would have written without those pairs), the fold's
pairs are scored, and the folds are pooled. Variants found in no dev story stay: they
were written from general knowledge; so do the closed classes anyone writes whole (number
words, weekdays and months, negations, function words), and, with ``--base REV``, every
variant added since REV (lists written without reading the corpus). The held-out
``test.jsonl`` is never read.

    python -m scripts.story_cv            # pooled precision/recall per language
    python -m scripts.story_cv --errors   # ... and every miss with its reason
    python -m scripts.story_cv --base efa3a45   # lists added since efa3a45 were blind
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
from collections import Counter, defaultdict
from pathlib import Path
from unittest import mock

from workers import lexicon, matching, vocab
from workers.lexicon import Section
from workers.matching import compare
from workers.storyfacts import extract

# Sections written whole from general knowledge, never from the pairs.
_CLOSED = {"numbers", "dates", "negation", "stopwords", "joiners"}
DEV = Path(__file__).resolve().parent.parent / "tests" / "data" / "stories" / "dev.jsonl"
_WORD = re.compile(r"\w+", re.UNICODE)


def _fold_of(story: str, folds: int) -> int:
    return int(hashlib.sha256(story.encode()).hexdigest(), 16) % folds


def _token_forms(lang: str, word: str) -> set[str]:
    folded = vocab.fold(word)
    forms = {folded, vocab._stem(lang, folded)}
    if lang == "ar":
        for form in vocab._arabic_forms(folded):
            forms |= {form, vocab._stem(lang, form)}
    return forms


def _occurs(variant: str, lang: str, headline: list[set[str]]) -> bool:
    words = variant.replace("-", " ").split()
    keys = [{vocab.fold(w), vocab._stem(lang, vocab.fold(w))} for w in words]
    n = len(keys)
    return any(
        all(keys[j] & headline[i + j] for j in range(n)) for i in range(len(headline) - n + 1)
    )


def _base_variants(rev: str, lang: str) -> set[tuple[str, str, str]] | None:
    """The (section, canonical, variant) entries of the lists at ``rev``; None: no base."""
    if not rev:
        return None
    text = subprocess.run(
        ["git", "show", f"{rev}:workers/lexicon/{lang}.txt"],
        capture_output=True,
        text=True,
        check=True,
        cwd=DEV.parents[3],
    ).stdout
    with mock.patch.object(lexicon.resources, "files") as files:
        files.return_value.joinpath.return_value.read_text.return_value = text
        sections = lexicon.read_sections.__wrapped__(lang)
    return {(name, c, v) for name, entries in sections.items() for c, vs in entries for v in vs}


def _stories_of_variants(lang: str, pairs: list[dict]) -> dict[tuple[str, str, str], set[str]]:
    """(section, canonical, variant) -> the dev stories whose headlines contain it."""
    headlines: dict[str, set[str]] = defaultdict(set)
    for p in pairs:
        headlines[p["story"]] |= {p["a"], p["b"]}
    tokenised = {
        story: [[_token_forms(lang, w) for w in _WORD.findall(h)] for h in texts]
        for story, texts in headlines.items()
    }
    out: dict[tuple[str, str, str], set[str]] = {}
    for section, entries in lexicon.read_sections.__wrapped__(lang).items():
        if section in _CLOSED:
            continue
        for canonical, variants in entries:
            for v in variants:
                out[(section, canonical, v)] = {
                    s for s, hs in tokenised.items() if any(_occurs(v, lang, h) for h in hs)
                }
    return out


def _without(lang: str, drop: set[tuple[str, str, str]]) -> dict[str, Section]:
    sections = lexicon.read_sections.__wrapped__(lang)
    return {
        name: [
            (c, kept) for c, vs in entries if (kept := [v for v in vs if (name, c, v) not in drop])
        ]
        for name, entries in sections.items()
    }


def _clear_caches() -> None:
    for module in (lexicon, vocab, matching):
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


def run(folds: int, show_errors: bool, base: str = "") -> dict[str, tuple[float, float]]:
    pairs = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines()]
    by_lang: dict[str, list[dict]] = defaultdict(list)
    for p in pairs:
        by_lang[p["lang"]].append(p)
    occurrences = {lang: _stories_of_variants(lang, ps) for lang, ps in by_lang.items()}
    for lang, occ in occurrences.items():
        if (old := _base_variants(base, lang)) is not None:
            occurrences[lang] = {e: ss for e, ss in occ.items() if e in old}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: Counter[str] = Counter()
    for k in range(folds):
        held = {p["story"] for p in pairs if _fold_of(p["story"], folds) == k}
        filtered = {
            lang: _without(lang, {e for e, ss in occ.items() if ss and ss <= held})
            for lang, occ in occurrences.items()
        }
        filtered["en"] = filtered.get("en") or lexicon.read_sections.__wrapped__("en")
        with mock.patch.object(vocab, "read_sections", filtered.__getitem__):
            _clear_caches()
            for p in pairs:
                if p["story"] not in held:
                    continue
                verdict = compare(extract(p["a"], p["lang"]), extract(p["b"], p["lang"]))
                gold = p["label"] == "same"
                outcome = {(True, True): "tp", (True, False): "fp", (False, True): "fn"}.get(
                    (verdict.same, gold), "tn"
                )
                for lang in (p["lang"], "all"):
                    counts[lang][outcome] += 1
                if outcome in ("fp", "fn"):
                    reasons[f"{outcome} {p['lang']} {verdict.reason}"] += 1
                    if show_errors:
                        print(
                            f"{outcome} {p['id']} {p['kind']} {verdict.reason} "
                            f"{verdict.score:.0f} {verdict.differing}\n"
                            f"   A {p['a']}\n   B {p['b']}"
                        )
    _clear_caches()
    result = {}
    for lang in ("en", "es", "ar", "all"):
        c = counts[lang]
        precision = c["tp"] / max(1, c["tp"] + c["fp"])
        recall = c["tp"] / max(1, c["tp"] + c["fn"])
        result[lang] = (precision, recall)
        print(f"{lang}: precision={precision:.3f} recall={recall:.3f} {dict(c)}")
    for reason, n in reasons.most_common(40):
        print(f"  {n:4d} {reason}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--errors", action="store_true", help="print every miss")
    parser.add_argument(
        "--base",
        default="",
        help="lists added since this git revision were written without the corpus: never removed",
    )
    args = parser.parse_args()
    run(args.folds, args.errors, args.base)


if __name__ == "__main__":
    main()

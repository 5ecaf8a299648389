"""Validate the story-matching corpus (dev.jsonl, test.jsonl); pure, no I/O but reading.

Checks: the schema of every pair; ids unique; labels and kinds valid and agreeing;
no pair twice and no headline paired with itself; every story wholly in the split
its id hashes to (so no story, and no headline, is in both splits); each story has
a same and a different pair; Arabic pairs are in Arabic script and the others not;
minimum counts per language and overall, with both splits holding a fair share; easy
negatives (diff:topic) fewer than hard ones.

Usage: python tests/data/stories/check.py  (exit status 1 and a list on failure)
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

__all__ = ["KINDS", "LANGS", "MIN_PER_LANG", "MIN_TOTAL", "check", "load", "split_of"]

HERE = Path(__file__).resolve().parent
LANGS = ("en", "es", "ar")
MIN_PER_LANG = 220
MIN_TOTAL = 220 * len(LANGS)
# The least share of a language's pairs each split must hold ("about half and half").
MIN_SPLIT_SHARE = 0.3
SAME_KINDS = (
    "attribution",
    "synonym",
    "context",
    "title",
    "percent",
    "decimal",
    "accents",
    "number-word",
    "digits",
    "number-format",
    "clitic",
    "word-order",
    "voice",
    "abbreviation",
    "transliteration",
    "spelling",
    "slug",
    "mixed",
)
DIFF_KINDS = (
    "number",
    "place",
    "person",
    "org",
    "event",
    "actor",
    "polarity",
    "followup",
    "day",
    "topic",
)
KINDS = frozenset({*(f"same:{k}" for k in SAME_KINDS), *(f"diff:{k}" for k in DIFF_KINDS)})
FIELDS = ("id", "lang", "story", "a", "b", "label", "kind")
ARABIC = re.compile(r"[\u0600-\u06FF]")


def split_of(story: str) -> str:
    """The split a story belongs to: dev when sha256 of its id is even (same rule as build.py)."""
    return "dev" if int(hashlib.sha256(story.encode()).hexdigest(), 16) % 2 == 0 else "test"


def load(directory: Path = HERE) -> dict[str, list[dict[str, object]]]:
    """Read both splits as lists of JSON objects."""
    out: dict[str, list[dict[str, object]]] = {}
    for split in ("dev", "test"):
        path = directory / f"{split}.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        out[split] = [json.loads(line) for line in lines if line.strip()]
    return out


def _row_errors(where: str, row: dict[str, object]) -> list[str]:
    if sorted(row) != sorted(FIELDS):
        return [f"{where}: fields {sorted(row)} are not {sorted(FIELDS)}"]
    if not all(isinstance(row[f], str) and str(row[f]).strip() for f in FIELDS):
        return [f"{where}: every field must be a non-empty string"]
    r = {f: str(row[f]) for f in FIELDS}
    errs = []
    lang = r["lang"]
    if lang not in LANGS:
        errs.append(f"{where}: lang {lang!r} not in {LANGS}")
    if not re.fullmatch(rf"{re.escape(lang)}-\d{{4}}", r["id"]):
        errs.append(f"{where}: id {r['id']!r} is not {lang}-NNNN")
    if not re.fullmatch(rf"{re.escape(lang)}-s\d{{3}}", r["story"]):
        errs.append(f"{where}: story {r['story']!r} is not {lang}-sNNN")
    if r["label"] not in ("same", "different"):
        errs.append(f"{where}: label {r['label']!r}")
    if r["kind"] not in KINDS:
        errs.append(f"{where}: kind {r['kind']!r} unknown")
    elif (r["kind"].startswith("same:")) != (r["label"] == "same"):
        errs.append(f"{where}: kind {r['kind']!r} disagrees with label {r['label']!r}")
    if r["a"].strip() == r["b"].strip():
        errs.append(f"{where}: a headline paired with itself")
    for side in ("a", "b"):
        if bool(ARABIC.search(r[side])) != (lang == "ar"):
            errs.append(f"{where}: {side} is not in the script of {lang!r}")
    return errs


def check(splits: dict[str, list[dict[str, object]]]) -> list[str]:
    """Every problem found in the corpus; empty when it is valid."""
    errors: list[str] = []
    ids: set[object] = set()
    pairs: set[tuple[object, frozenset[object]]] = set()
    heads: dict[object, set[str]] = defaultdict(set)
    labels: dict[object, set[object]] = defaultdict(set)
    per_lang: Counter[tuple[object, str]] = Counter()
    negatives: Counter[tuple[object, bool]] = Counter()  # (lang, easy) -> count
    for split, rows in splits.items():
        for n, row in enumerate(rows, 1):
            where = f"{split}.jsonl:{n}"
            row_errs = _row_errors(where, row)
            errors += row_errs
            if row_errs and sorted(row) != sorted(FIELDS):
                continue
            if row["id"] in ids:
                errors.append(f"{where}: duplicate id {row['id']}")
            ids.add(row["id"])
            key = (row["lang"], frozenset((row["a"], row["b"])))
            if key in pairs:
                errors.append(f"{where}: duplicate pair {row['a']!r} / {row['b']!r}")
            pairs.add(key)
            story = str(row["story"])
            if split_of(story) != split:
                errors.append(f"{where}: story {story} belongs to {split_of(story)}")
            for side in ("a", "b"):
                heads[row[side]].add(split)
            labels[story].add(row["label"])
            per_lang[(row["lang"], split)] += 1
            negatives[(row["lang"], row["kind"] == "diff:topic")] += row["label"] == "different"
    errors += [f"headline in both splits: {h!r}" for h, s in heads.items() if len(s) > 1]
    errors += [
        f"story {s} lacks a same or a different pair" for s, v in labels.items() if len(v) < 2
    ]
    for lang in LANGS:
        if negatives[(lang, True)] >= negatives[(lang, False)]:
            errors.append(f"{lang}: easy negatives (diff:topic) are not fewer than hard ones")
        total = per_lang[(lang, "dev")] + per_lang[(lang, "test")]
        if total < MIN_PER_LANG:
            errors.append(f"{lang}: {total} pairs, fewer than {MIN_PER_LANG}")
        for split in ("dev", "test"):
            if per_lang[(lang, split)] < MIN_SPLIT_SHARE * total:
                errors.append(f"{lang}: {split} holds {per_lang[(lang, split)]} of {total} pairs")
    if sum(per_lang.values()) < MIN_TOTAL:
        errors.append(f"{sum(per_lang.values())} pairs in all, fewer than {MIN_TOTAL}")
    return errors


def main() -> int:
    splits = load()
    errors = check(splits)
    for e in errors:
        print(e)
    counts = Counter(
        (str(r["lang"]), split, str(r["label"])) for split, rows in splits.items() for r in rows
    )
    for (lang, split, label), n in sorted(counts.items()):
        print(f"{lang} {split} {label}: {n}")
    print("OK" if not errors else f"{len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""The duplicate decision on the held-out split of the story corpus (tests/data/stories).

Thresholds and word lists are tuned on ``dev.jsonl`` only; this test reads ``test.jsonl``
and prints precision and recall per language and overall beside the targets (precision
0.98: a new fact suppressed is worse than a repeat shown; recall 0.90).

The matcher does not reach the targets yet (issue 14 stays open; docs/story-matching.md
has the figures). Until it does, the test holds the figures last measured on the test
split (2026-12-04, commit 40f80ad, one look at the end of a session's changes) as a
floor, so no change makes the held-out result worse unnoticed; raise the floors as the
matcher improves, never tune on this split.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from workers.matching import compare
from workers.storyfacts import extract

CORPUS = Path(__file__).parent / "data" / "stories"
PRECISION, RECALL = 0.98, 0.90  # the targets
# (precision, recall) measured on the test split on 2026-12-05 (commit c4a1193: en
# 0.916/0.617, es 0.958/0.587, ar 0.924/0.497, all 0.935/0.568), rounded down: the floor.
FLOORS = {"en": (0.91, 0.61), "es": (0.95, 0.58), "ar": (0.92, 0.49), "all": (0.93, 0.56)}


def _scores(split: str) -> dict[str, tuple[float, float, Counter[str]]]:
    counts: dict[str, Counter[str]] = {}
    for line in (CORPUS / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
        pair = json.loads(line)
        same = compare(extract(pair["a"], pair["lang"]), extract(pair["b"], pair["lang"])).same
        gold = pair["label"] == "same"
        outcome = {(True, True): "tp", (True, False): "fp", (False, True): "fn"}.get(
            (same, gold), "tn"
        )
        for lang in (pair["lang"], "all"):
            counts.setdefault(lang, Counter())[outcome] += 1
    out = {}
    for lang, c in counts.items():
        precision = c["tp"] / max(1, c["tp"] + c["fp"])
        recall = c["tp"] / max(1, c["tp"] + c["fn"])
        out[lang] = (precision, recall, c)
    return out


def test_precision_and_recall_on_the_test_split() -> None:
    """On unseen stories, precision and recall per language (en, es, ar) and overall are
    printed against the targets (the unmet ones marked BELOW) and never fall below the
    floor last measured (2026-12-05)."""
    scores = _scores("test")
    for lang, (precision, recall, c) in sorted(scores.items()):
        met = "meets" if precision >= PRECISION and recall >= RECALL else "BELOW"
        print(
            f"\n{lang}: precision={precision:.3f} recall={recall:.3f} {met} the targets "
            f"{PRECISION}/{RECALL} {dict(c)}",
            end="",
        )
    print()
    assert {"en", "es", "ar"} <= set(scores)
    worse = {
        lang: (round(p, 3), round(r, 3))
        for lang, (p, r, _) in scores.items()
        if p < FLOORS[lang][0] or r < FLOORS[lang][1]
    }
    assert not worse, f"below the measured floor {FLOORS}: {worse}"

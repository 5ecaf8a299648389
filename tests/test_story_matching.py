"""The duplicate decision on the held-out split of the story corpus (tests/data/stories).

Thresholds and word lists are tuned on ``dev.jsonl`` only; this test reads ``test.jsonl``,
prints precision and recall per language and overall, and fails below the targets
(precision 0.98: a new fact suppressed is worse than a repeat shown; recall 0.90).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from workers.matching import compare
from workers.storyfacts import extract

CORPUS = Path(__file__).parent / "data" / "stories"
PRECISION, RECALL = 0.98, 0.90


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
    """On unseen stories, precision is at least 0.98 and recall at least 0.90, per language
    (en, es, ar) and overall."""
    scores = _scores("test")
    for lang, (precision, recall, c) in sorted(scores.items()):
        print(f"\n{lang}: precision={precision:.3f} recall={recall:.3f} {dict(c)}", end="")
    print()
    assert {"en", "es", "ar"} <= set(scores)
    failing = {
        lang: (round(p, 3), round(r, 3))
        for lang, (p, r, _) in scores.items()
        if p < PRECISION or r < RECALL
    }
    assert not failing, f"below precision {PRECISION} / recall {RECALL}: {failing}"

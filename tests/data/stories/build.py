"""Build dev.jsonl and test.jsonl from the hand-written story files in src/.

Each story in src/<lang>.txt is an original headline, its rewrites (the same
facts as another desk words them) and its look-alikes (one fact changed)::

    @ en-s001
    = Russian missile strike kills 12 in Kharkiv, governor says
    same:attribution | Kharkiv governor: Russian missile strike kills 12
    diff:number | Russian missile strike kills 14 in Kharkiv, governor says

Pairs (fixed rule, so a rebuild gives the same files):
- same: the original with each rewrite (kind of the rewrite), and each rewrite
  with the next one (kind ``same:mixed``: two desks, neither the original);
- different: each look-alike with the original, and with one rewrite in turn,
  so a changed fact also meets a differently worded headline.
A story goes wholly to one split: dev when sha256(story id) is even, else test.

Usage: python tests/data/stories/build.py
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

__all__ = ["build", "split_of"]

HERE = Path(__file__).resolve().parent
LANGS = ("en", "es", "ar")


def split_of(story: str) -> str:
    """The split a story belongs to: a fixed hash of its id."""
    return "dev" if int(hashlib.sha256(story.encode()).hexdigest(), 16) % 2 == 0 else "test"


def _stories(text: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    stories: list[tuple[str, str, list[tuple[str, str]]]] = []
    sid, orig = "", ""
    lines: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            if sid:
                stories.append((sid, orig, lines))
            sid, orig, lines = line[1:].strip(), "", []
        elif line.startswith("="):
            orig = line[1:].strip()
        else:
            kind, _, head = line.partition("|")
            lines.append((kind.strip(), head.strip()))
    if sid:
        stories.append((sid, orig, lines))
    return stories


def build() -> dict[str, list[dict[str, str]]]:
    """Read src/*.txt and return the pairs of each split."""
    out: dict[str, list[dict[str, str]]] = {"dev": [], "test": []}
    for lang in LANGS:
        src = HERE / "src" / f"{lang}.txt"
        if not src.exists():
            continue
        n = 0
        seen: set[frozenset[str]] = set()
        for sid, orig, lines in _stories(src.read_text(encoding="utf-8")):
            assert orig and sid.startswith(f"{lang}-s"), sid
            rws = [(k, h) for k, h in lines if k.startswith("same:")]
            diffs = [(k, h) for k, h in lines if k.startswith("diff:")]
            assert len(rws) + len(diffs) == len(lines), sid
            pairs: list[tuple[str, str, str, str]] = []
            for k, h in rws:
                pairs.append((orig, h, "same", k))
            for (_, h1), (_, h2) in itertools.pairwise(rws):
                pairs.append((h1, h2, "same", "same:mixed"))
            for j, (k, h) in enumerate(diffs):
                pairs.append((orig, h, "different", k))
                if rws and k != "diff:topic":
                    pairs.append((rws[j % len(rws)][1], h, "different", k))
            for a, b, label, kind in pairs:
                key = frozenset((a, b))
                if int(hashlib.sha256((a + b).encode()).hexdigest(), 16) % 2:
                    a, b = b, a  # the original is not always on the left
                assert a != b, (sid, a)
                if key in seen:
                    continue
                seen.add(key)
                n += 1
                out[split_of(sid)].append(
                    {
                        "id": f"{lang}-{n:04d}",
                        "lang": lang,
                        "story": sid,
                        "a": a,
                        "b": b,
                        "label": label,
                        "kind": kind,
                    }
                )
    return out


def main() -> None:
    for split, rows in build().items():
        with (HERE / f"{split}.jsonl").open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()

"""An in-memory index of recent stories per edition: candidates without a scan; pure.

Every kept item is filed under its salient keys: its numbers, its names (a five-letter
prefix, so "Iran"/"Iranian" meet) and its three rarest content words. A new headline
looks up only its own keys, takes at most :data:`PER_KEY` of the newest items under each,
and compares in full only the :data:`COMPARED` that share the most keys with it, so the
cost of a decision does not grow with the window (docs/story-matching.md).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice

from workers.matching import THRESHOLD, Verdict, compare
from workers.storyfacts import Facts

__all__ = ["COMPARED", "PER_KEY", "StoryIndex", "salient_keys"]

PER_KEY = 32  # newest items read under one key
COMPARED = 8  # candidates compared in full


def salient_keys(facts: Facts) -> set[str]:
    keys = {f"n:{n}" for n in facts.numbers}
    keys.update(f"p:{k[:5]}" for name in facts.names for k in name.keys if not name.source)
    rare = sorted(facts.content.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    keys.update(f"w:{word}" for word, _ in rare)
    return keys


@dataclass(slots=True)
class _Edition:
    postings: dict[str, dict[str, None]] = field(default_factory=dict)  # key -> ids, oldest first
    order: deque[tuple[int, str]] = field(default_factory=deque)  # (ms, id), oldest first


@dataclass(slots=True)
class _Entry:
    edition: str
    at_ms: int
    facts: Facts
    keys: set[str]


class StoryIndex:
    """Recent items' facts by edition, for the duplicate decision."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._entries: dict[str, _Entry] = {}
        self._editions: dict[str, _Edition] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._entries

    def add(self, item_id: str, edition: str, at_ms: int, facts: Facts) -> None:
        """File an item (published at ``at_ms``); items older than the window leave."""
        if item_id in self._entries:
            return
        ed = self._editions.setdefault(edition, _Edition())
        keys = salient_keys(facts)
        self._entries[item_id] = _Entry(edition, at_ms, facts, keys)
        for key in keys:
            ed.postings.setdefault(key, {})[item_id] = None
        ed.order.append((at_ms, item_id))
        self.evict(at_ms - self.window_ms)

    def evict(self, before_ms: int) -> None:
        for ed in self._editions.values():
            while ed.order and ed.order[0][0] < before_ms:
                _, item_id = ed.order.popleft()
                self.remove(item_id)

    def remove(self, item_id: str) -> None:
        entry = self._entries.pop(item_id, None)
        if entry is None:
            return
        postings = self._editions[entry.edition].postings
        for key in entry.keys:
            ids = postings.get(key)
            if ids is not None:
                ids.pop(item_id, None)
                if not ids:
                    del postings[key]

    def candidates(self, edition: str, facts: Facts) -> list[str]:
        """Ids of the recent items most likely to tell this story, best first."""
        ed = self._editions.get(edition)
        if ed is None:
            return []
        # A key few items share says more than one thousands do: a true rewrite shares
        # the rare keys (its numbers, its names), so it outranks look-alikes that only
        # meet it under common ones.
        hits: dict[str, float] = {}
        for key in salient_keys(facts):
            ids = ed.postings.get(key)
            if ids:
                weight = 1.0 / len(ids)
                for item_id in islice(reversed(ids), PER_KEY):
                    hits[item_id] = hits.get(item_id, 0.0) + weight
        return heapq.nlargest(COMPARED, hits, key=hits.__getitem__)

    def best(
        self, edition: str, facts: Facts, threshold: float = THRESHOLD, exclude: str = ""
    ) -> tuple[str, Verdict] | None:
        """The recent item telling the same story with the highest score, if any;
        on a tie the older one, so a duplicate points at the original report."""
        found: tuple[str, Verdict] | None = None
        for item_id in self.candidates(edition, facts):
            if item_id == exclude:
                continue
            entry = self._entries[item_id]
            verdict = compare(facts, entry.facts, threshold)
            if not verdict.same:
                continue
            if found is None or (verdict.score, -entry.at_ms) > (
                found[1].score,
                -self._entries[found[0]].at_ms,
            ):
                found = (item_id, verdict)
        return found

    def ids(self) -> Iterator[str]:
        return iter(self._entries)

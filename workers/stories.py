"""The worker's story memory: facts kept beside each item in Redis and indexed in memory.

An item's facts are computed once, when the worker accepts it, and written to the item's
hash (field ``facts``) by the atomic publish step itself. Each worker process holds a
:class:`~workers.storyindex.StoryIndex` of the recent window, built from Redis on start and
brought up to date before each decision from the editions' recent sets (items other
workers published), reading only what it has not seen: no job re-reads the window.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from redis.asyncio import Redis

from ticker.constants import Keys
from workers.matching import Verdict, compare
from workers.normalise import language_of
from workers.storyfacts import Facts, extract
from workers.storyindex import StoryIndex

__all__ = ["Stories", "facts_of", "warm_up"]

log = logging.getLogger("ticker.worker")

# Recent items read per Redis round trip when catching up.
_BATCH = 1000


def facts_of(item: dict[str, Any]) -> Facts:
    """The facts of an item's headline in its edition's language."""
    return extract(item["headline"], language_of(item["edition"]))


def warm_up(*editions: str) -> None:
    """Load editions' word lists, stemmers and word frequencies (about a second each)."""
    for edition in editions:
        extract("Warm up: 2 killed in Jenin", language_of(edition))


class Stories:
    """The recent window's facts, per worker process, kept in step with Redis."""

    def __init__(self, redis: Redis, keys: Keys, window_seconds: int) -> None:
        self.redis = redis
        self.keys = keys
        self.window_ms = window_seconds * 1000
        self.index = StoryIndex(self.window_ms)
        self._seen_ms: dict[str, int] = {}  # edition -> newest score read
        # Items this process is publishing now (id -> edition, facts): the recent set may
        # name them before the job files them, and a decision must not read them back or
        # re-extract; a decision made meanwhile compares with them too (see best).
        self._pending: dict[str, tuple[str, Facts]] = {}

    def look(self, pipe: Any, edition: str) -> int:
        """Queue the first read of :meth:`sync` on a pipeline (beside a job's other reads);
        returns the time to give :meth:`sync` with that read's answer."""
        now_ms = int(time.time() * 1000)
        self._read(pipe, edition, max(self._seen_ms.get(edition, 0), now_ms - self.window_ms))
        return now_ms

    def _read(self, client: Any, edition: str, since: int) -> Any:
        return client.zrangebyscore(
            self.keys.recent(edition), since, "+inf", start=0, num=_BATCH, withscores=True
        )

    async def sync(
        self, edition: str, looked: tuple[int, list[tuple[bytes, float]]] | None = None
    ) -> None:
        """Index the edition's items published since the last look (by any worker);
        ``looked``: the time and answer of :meth:`look`, when the first read is done."""
        if looked is None:
            now_ms = int(time.time() * 1000)
            since = max(self._seen_ms.get(edition, 0), now_ms - self.window_ms)
            rows = await self._read(self.redis, edition, since)
        else:
            now_ms, rows = looked
        while True:
            fresh = []
            for raw_id, score in rows:
                item_id = raw_id.decode()
                if item_id in self.index:
                    continue
                if (mine := self._pending.get(item_id)) is not None:
                    self.index.add(item_id, edition, int(score), mine[1])
                else:
                    fresh.append((item_id, int(score)))
            if fresh:
                await self._load(edition, fresh)
            if rows:
                self._seen_ms[edition] = int(rows[-1][1])
            if len(rows) < _BATCH:
                break
            since = int(rows[-1][1])
            if all(i.decode() in self.index for i, _ in rows):
                since += 1  # a full page of one millisecond's items: move past it
            rows = await self._read(self.redis, edition, since)
        self.index.evict(now_ms - self.window_ms)

    async def _load(self, edition: str, fresh: list[tuple[str, int]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for item_id, _ in fresh:
                pipe.hmget(self.keys.item(item_id), ["facts", "item"])
            rows = await pipe.execute()
        for (item_id, at_ms), (facts_doc, item_doc) in zip(fresh, rows, strict=True):
            try:
                if facts_doc:
                    facts = Facts.from_json(orjson.loads(facts_doc))
                elif item_doc:
                    facts = facts_of(orjson.loads(item_doc))  # written by an older worker
                else:
                    continue
            except Exception:  # one unreadable item must not stop the others
                log.exception("story facts of %s unreadable; not indexed", item_id)
                continue
            self.index.add(item_id, edition, at_ms, facts)

    def best(
        self, edition: str, facts: Facts, threshold: float, exclude: str = ""
    ) -> tuple[str, Verdict] | None:
        """The recent item telling the same story, if any: those indexed, then those this
        process is publishing right now. Jobs run side by side, so two rewrites of one
        story can both be decided before either is published; the second sees the first
        here. (Two worker processes deciding at the same moment can still both publish.)"""
        found = self.index.best(edition, facts, threshold, exclude=exclude)
        if found is not None:
            return found
        for item_id, (other_edition, other) in self._pending.items():
            if other_edition != edition or item_id == exclude or item_id in self.index:
                continue
            verdict = compare(facts, other, threshold)
            if verdict.same and (found is None or verdict.score > found[1].score):
                found = (item_id, verdict)
        return found

    def expect(self, item_id: str, edition: str, facts: Facts) -> None:
        """This process is about to publish ``item_id`` with these facts. Call it in the
        same step as the decision (no await between), so no decision falls between."""
        self._pending[item_id] = (edition, facts)

    def settle(self, item_id: str) -> None:
        """The publish step of ``item_id`` is over (whatever it answered)."""
        self._pending.pop(item_id, None)

    def filed(self, item_id: str, edition: str, facts: Facts) -> None:
        """Index an item just published with its facts (the publish step stored them)."""
        self.index.add(item_id, edition, int(time.time() * 1000), facts)

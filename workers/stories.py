"""The worker's story memory: facts kept beside each item in Redis and indexed in memory.

An item's facts are computed once, when the worker accepts it, and written to the item's
hash (field ``facts``) by the atomic publish step itself. Each worker process holds a
:class:`~workers.storyindex.StoryIndex` of the recent window, built from Redis on start;
its own items are filed from memory as it publishes them.

Other workers' items are read only when needed. The publish step counts the items each
worker adds to an edition's recent set; a decision carries the count of other workers'
items its index holds (:meth:`Stories.others`), and the step refuses (``changed``) when
that count has moved: the job reads the edition's recent set from where it left off
(:meth:`Stories.sync`) and decides again. So a decision reads nothing from Redis, two
worker processes deciding at the same instant do not both publish, and no job re-reads
the window.
"""

from __future__ import annotations

import logging
import time
import uuid
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
        # This process's name in the editions' publish counts (Keys.recent_count_by).
        self.writer = uuid.uuid4().hex
        # edition -> (other workers' items the index holds, the sync that counted them)
        self._others: dict[str, tuple[int, int]] = {}
        self._syncs = 0

    def look(self, pipe: Any, edition: str) -> tuple[int, int]:
        """Queue the first reads of :meth:`sync` on a pipeline (beside a job's other reads):
        the edition's publish counts, then its items since the last look. Returns what to
        give :meth:`sync` with those reads' three answers."""
        now_ms = int(time.time() * 1000)
        # Counts first: an item published between the reads is read, though not counted
        # (the next publish step then asks for another look); never counted and not read.
        pipe.get(self.keys.recent_count(edition))
        pipe.get(self.keys.recent_count_by(edition, self.writer))
        self._read(pipe, edition, max(self._seen_ms.get(edition, 0), now_ms - self.window_ms))
        self._syncs += 1
        return now_ms, self._syncs

    def others(self, edition: str) -> int:
        """How many of the edition's recent items other workers added, as far as the index
        knows them all: the publish step checks it (``changed`` when it moved)."""
        return self._others.get(edition, (0, 0))[0]

    def _read(self, client: Any, edition: str, since: int, skip: int = 0) -> Any:
        return client.zrangebyscore(
            self.keys.recent(edition), since, "+inf", start=skip, num=_BATCH, withscores=True
        )

    async def sync(
        self, edition: str, looked: tuple[tuple[int, int], list[Any]] | None = None
    ) -> None:
        """Index the edition's items published since the last look (by any worker);
        ``looked``: what :meth:`look` returned and its reads' answers, when they are done."""
        if looked is None:
            async with self.redis.pipeline(transaction=False) as pipe:
                mark = self.look(pipe, edition)
                looked = (mark, await pipe.execute())
        (now_ms, sync_no), (counted, counted_mine, rows) = looked
        since, skip = -1, 0
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
            # The next page starts at the last score, past the items of that score read
            # already (many items may share one: scores never go back).
            last = int(rows[-1][1])
            tail = 0
            for _, score in reversed(rows):
                if int(score) != last:
                    break
                tail += 1
            skip = skip + tail if last == since else tail
            since = last
            rows = await self._read(self.redis, edition, since, skip)
        self.index.evict(now_ms - self.window_ms)
        # Every item counted is indexed now. A later look's count is the newer one, so an
        # earlier one finishing after it does not take its place.
        if sync_no > self._others.get(edition, (0, 0))[1]:
            self._others[edition] = (int(counted or 0) - int(counted_mine or 0), sync_no)

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
        here. (Two worker processes deciding at the same moment: see :meth:`others`.)"""
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

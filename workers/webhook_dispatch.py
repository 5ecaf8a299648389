"""The webhook dispatcher: events from the stream into per-endpoint delivery queues.

One runs in each worker process. It reads the event stream (the source of
truth, not pub/sub) from a cursor kept in Redis, so a worker that was down
resumes where the cursor stands. The Lua step that appends an event to the
matching endpoints' queues also moves the cursor, and does nothing if the
cursor is already past the event: several dispatchers, or a re-run after a
crash, queue each event once per endpoint. See ``workers/webhooks.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ticker.constants import Keys
from ticker.events import Event, parse_stream_id
from ticker.jobs import enqueue_delivery
from ticker.lua import script as lua
from ticker.retries import backoff
from ticker.webhooks.store import Endpoint, WebhookStore

__all__ = ["Dispatcher", "sweep"]

log = logging.getLogger("ticker.webhooks")


class Dispatcher:
    """Fans events out of the stream into per-endpoint queues (see the module doc)."""

    def __init__(self, redis: Redis, keys: Keys, queue: Any = None, block_ms: int = 2000) -> None:
        self.redis: Any = redis  # redis-py's stubs mix sync and async returns
        # The arq pool jobs go to: its own Redis under Cluster (TICKER_QUEUE_REDIS_URL).
        self.jobs: Any = queue if queue is not None else redis
        self.keys = keys
        self.store = WebhookStore(redis, keys)
        self.block_ms = block_ms
        self._fanout = redis.register_script(lua("webhook_fanout"))
        self._failures = 0  # Redis errors in a row; reset once reading works again

    async def run(self) -> None:
        while True:
            try:
                await self._session()
            except (RedisError, OSError) as exc:
                log.warning("webhook dispatcher lost Redis (%s); retrying", exc)
                self._failures += 1
                await asyncio.sleep(backoff(self._failures, 0.1, 5.0))

    async def _session(self) -> None:
        cursor = await self._cursor()
        await sweep(self.redis, self.keys, self.jobs)  # backlogs left by a previous run
        while True:
            # Another worker's dispatcher may be ahead: skip what it has fanned out.
            shared = (await self.redis.get(self.keys.webhook_cursor) or b"0-0").decode()
            if parse_stream_id(shared) > parse_stream_id(cursor):
                cursor = shared
            got = await self.redis.xread({self.keys.events: cursor}, count=100, block=self.block_ms)
            self._failures = 0
            if not got:
                continue
            endpoints = await self.store.all()
            unmoved = ""  # the newest event past the shared cursor that no endpoint wants
            for raw_id, fields in got[0][1]:
                event = Event.from_entry(raw_id.decode(), fields)
                if self.targets(event, endpoints):
                    await self.dispatch(event, endpoints)
                    unmoved = ""
                else:
                    unmoved = event.id
                cursor = event.id
            if unmoved:
                # Events no endpoint wants queue nothing: the shared cursor moves past
                # them once a batch, not once an event (a re-run of them adds nothing).
                await self._fanout(keys=[self.keys.webhook_cursor], args=[unmoved, b""])

    async def _cursor(self) -> str:
        # First run ever: start at the stream's end (no history is sent to anyone).
        await self.redis.set(self.keys.webhook_cursor, await self.store.stream_last_id(), nx=True)
        return str((await self.redis.get(self.keys.webhook_cursor)).decode())

    @staticmethod
    def targets(event: Event, endpoints: list[Endpoint]) -> list[Endpoint]:
        """The endpoints that take ``event``."""
        return [
            ep
            for ep in endpoints
            if ep.enabled and event.key > parse_stream_id(ep.after) and event.matches(ep.filter)
        ]

    async def dispatch(self, event: Event, endpoints: list[Endpoint]) -> None:
        targets = self.targets(event, endpoints)
        keys = [self.keys.webhook_cursor]
        for ep in targets:
            keys += [self.keys.webhook(ep.id), self.keys.webhook_queue(ep.id)]
        if await self._fanout(keys=keys, args=[event.id, event.payload]):
            for ep in targets:
                await enqueue_delivery(self.jobs, self.keys, ep.id, event.id)


async def sweep(redis: Any, keys: Keys, jobs: Any = None) -> int:
    """Nudge every enabled endpoint with a backlog, no deliverer and no retry pending.

    ``jobs`` is the arq pool when the queue has its own Redis.
    """
    store = WebhookStore(redis, keys)
    now = time.time()
    n = 0
    for ep in await store.all():
        if not ep.enabled or not await redis.llen(keys.webhook_queue(ep.id)):
            continue
        if await redis.exists(keys.webhook_lease(ep.id)):
            continue
        not_before = float(await redis.hget(keys.webhook_state(ep.id), "not_before") or 0)
        if not_before > now + 1:
            continue
        await enqueue_delivery(jobs or redis, keys, ep.id, f"sweep:{int(now)}")
        n += 1
    return n

"""The one Redis subscription of an API process.

Pub/sub is only the fast path: on every (re)subscription, and every few
seconds as a watchdog, the subscriber reads the stream after the hub's last id
and dispatches what the hub missed. Dispatch drops ids it has already seen, so
the overlap between the two paths is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ticker.constants import Keys
from ticker.events import Event
from ticker.redis_conn import ShardedPubSub, open_pubsub
from ticker.retries import backoff
from ticker.stream.hub import Hub
from ticker.stream.reads import Store

__all__ = ["Subscriber"]

log = logging.getLogger("ticker.stream.subscriber")


class Subscriber:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        hub: Hub,
        store: Store,
        *,
        sharded: bool = False,
        watchdog_seconds: float = 5.0,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.hub = hub
        self.store = store
        self.sharded = sharded
        self.watchdog_seconds = watchdog_seconds
        self.live = False  # subscribed and caught up
        self.reconnects = 0

    async def run(self) -> None:
        """Subscribe, catch up, dispatch; on any Redis error back off and do it again."""
        failures = 0
        while True:
            try:
                await self._session()
            except (RedisError, OSError) as exc:
                self.live = False
                self.reconnects += 1
                failures += 1
                delay = backoff(failures, 0.05, 5.0)
                log.warning("subscription lost (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
            else:
                failures = 0

    async def _session(self) -> None:
        pubsub = open_pubsub(self.redis, sharded=self.sharded)
        try:
            if isinstance(pubsub, ShardedPubSub):
                await pubsub.ssubscribe(self.keys.channel)
            else:
                await pubsub.subscribe(self.keys.channel)
            await self.catch_up()
            self.live = True
            watchdog = asyncio.get_running_loop().time() + self.watchdog_seconds
            while True:
                message = await pubsub.get_message(timeout=self.watchdog_seconds)
                if message is not None and message["type"] in ("message", "smessage"):
                    event = Event(message["data"])
                    if event.epoch and event.epoch != self.hub.epoch:
                        await self.catch_up()  # Redis has a new epoch: reset now
                    else:
                        self.hub.dispatch_soon(event)
                now = asyncio.get_running_loop().time()
                if now >= watchdog:
                    await self.catch_up()
                    watchdog = now + self.watchdog_seconds
        finally:
            self.live = False
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    async def catch_up(self) -> None:
        """Bring the hub level with the stream (or reload it if its place is gone, or
        if Redis's data is not the hub's any more: another epoch, ticker.epoch)."""
        if not self.hub.ready.is_set():
            snap = await self.store.snapshot()
            self.hub.load(snap.last_id, snap.items, snap.epoch)
            return
        resume = await self.store.resume(self.hub.last_id, self.hub.epoch)
        if resume.reset:
            snap = await self.store.snapshot()
            if snap.epoch != self.hub.epoch:
                reason, scope = "Redis lost or replaced its data (a new epoch)", "epoch"
            else:
                reason, scope = "the stream no longer holds this node's position", "node"
            self.hub.reset(snap.last_id, snap.items, reason, snap.epoch, scope)
            return
        for event in resume.events:
            self.hub.dispatch(event)

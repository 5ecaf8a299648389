"""Web Push state in Redis: the VAPID key pair and the browsers' subscriptions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ticker.config import Settings
from ticker.constants import Keys
from ticker.webpush.messages import Subscription, VapidKeys

__all__ = ["WebPushStore"]


class WebPushStore:
    def __init__(self, redis: Any, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def vapid(self, settings: Settings) -> VapidKeys:
        """The configured key, else the one in Redis, made by whichever process came first."""
        if settings.webpush_vapid_private_key:
            return VapidKeys(settings.webpush_vapid_private_key.encode())
        made = VapidKeys.generate()
        await self.redis.hsetnx(self.keys.webpush_vapid, "private_pem", made.private_pem)
        return VapidKeys(await self.redis.hget(self.keys.webpush_vapid, "private_pem"))

    async def put(self, sub: Subscription) -> bool:
        """Store (or update) a subscription; True if it is new."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.webpush_subscriptions, sub.id, sub.to_json())
        pipe.incr(self.keys.webpush_version)
        created, _ = await pipe.execute()
        return bool(created)

    async def delete(self, sub_id: str) -> bool:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.keys.webpush_subscriptions, sub_id)
        pipe.incr(self.keys.webpush_version)
        deleted, _ = await pipe.execute()
        return bool(deleted)

    async def get(self, sub_id: str) -> Subscription | None:
        raw = await self.redis.hget(self.keys.webpush_subscriptions, sub_id)
        return Subscription.from_json(raw) if raw else None

    async def version(self) -> int:
        return int(await self.redis.get(self.keys.webpush_version) or 0)

    async def pages(self, count: int = 2000) -> AsyncIterator[list[Subscription]]:
        """Every subscription, a page (about ``count``) per HSCAN, so Redis is never blocked."""
        cursor = 0
        while True:
            cursor, page = await self.redis.hscan(
                self.keys.webpush_subscriptions, cursor, count=count
            )
            if page:
                yield [Subscription.from_json(raw) for raw in page.values()]
            if not cursor:
                return

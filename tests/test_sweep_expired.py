"""The expiry sweep (workers.apply.sweep_expired), the safety net for lost expiry jobs,
against a real Redis with thousands of live items."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from redis.asyncio import Connection, ConnectionPool, Redis

from ticker.config import Settings
from ticker.constants import Keys
from workers import apply


class _Counting(Connection):
    """Counts the requests sent: a pipeline's page is one."""

    sent = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        await super().send_packed_command(command, check_health)


async def test_the_sweep_reads_thousands_of_live_items_a_page_at_a_time(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 3,000 live items the sweep makes a handful of round trips, not one per item
    (it ran past its job timeout that way and never finished), and still hands every
    item whose time has passed, and only those, to the expiry."""
    keys = Keys(settings.redis_prefix)
    redis = Redis(
        connection_pool=ConnectionPool.from_url(settings.redis_url, connection_class=_Counting)
    )
    expired: list[str] = []

    async def expire_item(ctx: dict[str, Any], item_id: str, expires_at: str) -> str:
        expired.append(item_id)
        return "published"

    monkeypatch.setattr(apply, "expire_item", expire_item)
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(3000):
                expires = "2020-01-01T00:00:00Z" if i % 1000 == 7 else "2999-01-01T00:00:00Z"
                doc = {"id": f"it{i}", "expires_at": expires if i % 2 else None}
                pipe.zadd(keys.live, {f"it{i}": i})
                pipe.hset(keys.item(f"it{i}"), "item", orjson.dumps(doc))
            pipe.zadd(keys.live, {"gone": 3001})  # listed, its hash already deleted
            await pipe.execute()
        _Counting.sent = 0
        n = await apply.sweep_expired({"keys": keys, "redis": redis})
        assert sorted(expired) == ["it1007", "it2007", "it7"] and n == 3
        assert _Counting.sent <= 10, f"{_Counting.sent} round trips for 3,001 live items"
    finally:
        await redis.flushdb()
        await redis.aclose()

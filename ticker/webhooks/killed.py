"""Killed items in webhook payloads: what a retraction takes back from the delivery queues.

A retraction deletes the item's earlier events from the stream in its atomic step
(ticker/lua/publish.lua), but copies of them may wait in a webhook endpoint's queue (a
receiver that is down) or its dead-letter list. Those are dropped where they would be
sent, replayed or listed: an event that carries the item's text (``item.published``,
``item.updated``) of an item now retracted. The retraction event itself carries no text
and is delivered as usual.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ticker.constants import Keys

__all__ = ["TEXT_EVENTS", "killed_items", "text_item"]

TEXT_EVENTS = frozenset(("item.published", "item.updated"))


def text_item(payload: bytes | str) -> str | None:
    """The item id of an event envelope that carries an item's text, else None (pure)."""
    try:
        event = orjson.loads(payload)
        if event.get("type") in TEXT_EVENTS:
            item_id = event["item"]["id"]
            return item_id if isinstance(item_id, str) else None
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
        pass
    return None


async def killed_items(redis: Any, keys: Keys, payloads: Iterable[bytes | str]) -> set[str]:
    """The ids of retracted items among those whose text ``payloads`` carry."""
    ids = sorted({i for p in payloads if (i := text_item(p)) is not None})
    if not ids:
        return set()
    async with redis.pipeline(transaction=False) as pipe:
        for item_id in ids:
            pipe.hget(keys.item(item_id), "status")
        statuses = await pipe.execute()
    return {i for i, s in zip(ids, statuses, strict=True) if s == b"retracted"}

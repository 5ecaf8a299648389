"""The desk feed: every status change of an item, for the editors' board.

The public stream carries only what readers see (published, updated, retracted, expired);
the desk also needs queued, embargoed, held, duplicate and cancelled. Every place that
changes an item's status calls :func:`note_status` once the change is stored; it appends
the item's whole desk view to one Redis stream (``Keys.desk_feed``), which the desk's SSE
endpoint follows and ``Prefer: wait`` waits on.

The item's hash stays the source of truth: a note that cannot be written is logged and
dropped (the board reloads the listing whenever it reconnects).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from redis.exceptions import RedisError

from ticker.constants import DESK_FEED_MAXLEN, Keys
from ticker.intake.itemview import desk_view

__all__ = ["last_feed_id", "note_status"]

log = logging.getLogger("ticker.deskfeed")  # the name logs have always carried


async def note_status(
    redis: Any, keys: Keys, item_id: str, *, by: str | None = None, raw: Any = None
) -> None:
    """Tell the desk an item's status (or version) changed; ``by`` names who changed it.
    ``raw``: the item's hash, when the caller has just read it (after the change)."""
    try:
        if raw is None:
            raw = await redis.hgetall(keys.item(item_id))
        if not raw:
            return
        view = desk_view(item_id, raw)
        await redis.xadd(
            keys.desk_feed,
            {
                "item": item_id,
                "edition": str(view["item"].get("edition", "")),
                "view": orjson.dumps({**view, "changed_by": by}),
            },
            maxlen=DESK_FEED_MAXLEN,
            approximate=True,
        )
    except (RedisError, OSError) as exc:
        log.warning("desk feed note for %s not written: %r", item_id, exc)


async def last_feed_id(redis: Any, keys: Keys) -> str:
    """The id of the newest note ("0-0" when there is none): follow the feed after it."""
    newest = await redis.xrevrange(keys.desk_feed, count=1)
    return newest[0][0].decode() if newest else "0-0"

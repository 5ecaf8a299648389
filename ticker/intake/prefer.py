"""``Prefer: wait=N`` (RFC 7240): answer with the decision instead of ``queued``.

The parser is pure. The wait follows the desk feed (ticker.intake.deskfeed) from before the item
was last read, so a decision taken in between is not missed, and gives up after N seconds
(at most :data:`MAX_WAIT`), answering with whatever the item is then.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ticker.constants import Keys
from ticker.intake.deskfeed import last_feed_id
from ticker.intake.itemview import desk_view
from ticker.intake.schema import parse_time

__all__ = ["MAX_WAIT", "decided", "parse_wait", "wait_for_decision", "waited_answer"]

MAX_WAIT = 10.0
# Redis commands time out after TICKER_REDIS_TIMEOUT; each blocking read stays well under.
_BLOCK_MS = 500


def parse_wait(header: str | None) -> float | None:
    """The ``wait`` preference in seconds (capped at MAX_WAIT), or None if absent or invalid.

    RFC 7240: preferences are comma separated, names are case-insensitive, a preference the
    server does not understand or cannot parse is ignored (never an error).
    """
    if not header:
        return None
    for part in header.split(","):
        name, _, value = part.split(";")[0].strip().partition("=")
        if name.strip().lower() != "wait":
            continue
        value = value.strip().strip('"')
        if value.isdigit() and len(value) <= 6:
            return min(float(value), MAX_WAIT)
        return None
    return None


async def wait_for_decision(
    redis: Any,
    keys: Keys,
    item_id: str,
    done: Callable[[dict[str, Any]], bool],
    seconds: float,
) -> dict[str, Any]:
    """The item's desk view once ``done(view)`` holds, or as it is after ``seconds``."""
    after = await last_feed_id(redis, keys)
    view = desk_view(item_id, await redis.hgetall(keys.item(item_id)))
    deadline = time.monotonic() + seconds
    while not done(view):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        block = max(1, min(_BLOCK_MS, int(left * 1000)))
        got = await redis.xread({keys.desk_feed: after}, count=100, block=block)
        mine = False
        for _stream, entries in got or ():
            for entry_id, fields in entries:
                after = entry_id.decode()
                mine = mine or fields.get(b"item") == item_id.encode()
        if mine:
            view = desk_view(item_id, await redis.hgetall(keys.item(item_id)))
    return view


def decided(view: dict[str, Any]) -> bool:
    """Whether the worker has ruled on a new item (or draft): anything but queued, or an
    embargo still to come."""
    if view["status"] == "embargoed":
        until = view["item"].get("embargoed_until")
        return bool(until) and parse_time(until, "embargoed_until") > datetime.now(UTC)
    return view["status"] != "queued"


async def waited_answer(
    request: Request, item_id: str, done: Callable[[dict[str, Any]], bool], wait: float
) -> Response:
    """Answer ``Prefer: wait=N``: 200 with the decision, or 202 with the item as it is."""
    state = request.state
    view = await wait_for_decision(state.redis, state.keys, item_id, done, wait)
    headers = {"Location": f"/v1/items/{item_id}", "Preference-Applied": f"wait={wait:g}"}
    return JSONResponse(view, 200 if done(view) else 202, headers)

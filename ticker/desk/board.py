"""GET /desk/feed: the editors' board as Server-Sent Events.

First a ``snapshot`` of the board (every queued, embargoed, held and live item of the
editions the editor may touch), then every status change from the desk feed
(ticker.intake.deskfeed) as a ``status`` event. The feed position is read before the snapshot, so
nothing falls between the two (a change seen twice just updates the same card). A session
that ends (sign-out, expiry, account disabled) gets a ``signed-out`` event and the stream
closes. A reconnecting board gets a fresh snapshot.

Each open board holds one blocking read on the Redis pool: fine for a newsroom's editors,
not meant for readers (they use /v1/stream).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ticker.intake.api import authenticate
from ticker.intake.deskfeed import last_feed_id
from ticker.intake.itemview import BOARD_STATUSES
from ticker.intake.listing import ListQuery, find_items, readable_editions

__all__ = ["BOARD_MAX", "routes"]

BOARD_MAX = 200  # newest board items in the snapshot
_BLOCK_MS = 1000  # under TICKER_REDIS_TIMEOUT; also how often the session is checked


def _frame(event: str, data: Any, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    # orjson never writes a raw newline, so one data line holds the whole event.
    return f"{head}event: {event}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n"


async def desk_feed(request: Request) -> Response:
    """The live board feed for a signed-in editor (or an API key)."""
    key = authenticate(request)
    editions = readable_editions(key, None)
    state = request.state
    redis, keys = state.redis, state.keys
    session = request.scope.get("ticker.desk_session")
    cookie_sessions = state.desk
    after = await last_feed_id(redis, keys)
    items, _ = await find_items(
        redis, keys, ListQuery(statuses=frozenset(BOARD_STATUSES), limit=BOARD_MAX), editions
    )
    ping_every = state.settings.sse_ping_seconds

    async def events() -> AsyncIterator[bytes]:
        nonlocal after
        yield b"retry: 1000\n\n" + _frame("snapshot", {"items": items, "editions": _list(editions)})
        last_write = time.monotonic()
        while True:
            if session is not None and not await _still_signed_in(cookie_sessions, session):
                yield _frame("signed-out", {"reason": "the session has ended; sign in again"})
                return
            got = await redis.xread({keys.desk_feed: after}, count=100, block=_BLOCK_MS)
            for _stream, entries in got or ():
                for entry_id, fields in entries:
                    after = entry_id.decode()
                    edition = fields.get(b"edition", b"").decode()
                    if editions is None or edition in editions:
                        yield _frame("status", orjson.loads(fields[b"view"]), after)
                        last_write = time.monotonic()
            if time.monotonic() - last_write >= ping_every:
                yield b": ping\n\n"
                last_write = time.monotonic()

    return StreamingResponse(
        events(),
        media_type="text/event-stream; charset=utf-8",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _list(editions: frozenset[str] | None) -> list[str] | None:
    return sorted(editions) if editions is not None else None


async def _still_signed_in(sessions: Any, session: tuple[str, dict[str, str], Any]) -> bool:
    sid, _data, account = session
    if not await sessions.alive(sid):
        return False
    fresh = await sessions.redis.hget(sessions.keys.user(account.name), "disabled")
    return bool(fresh == b"0")


routes = [Route("/desk/feed", desk_feed, methods=["GET"])]

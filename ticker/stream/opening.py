"""Opening a stream: one definition for the three paths that open one.

A stream opens through the router or the stream gate (both reach the endpoints in
sse.py and ws.py) or through the fast lane (ticker.serve.fastlane), and every path
answers with the same bytes (tests/test_fastlane.py compares them). What they share
is defined here:

- the request: the filter and the last event id (:func:`stream_request`), and whether
  a fresh stream can open at once (:func:`opens_at_once`);
- the SSE response's own headers (:data:`SSE_HEADERS`) and its first chunk, the retry
  hint and the snapshot or replay (:func:`sse_first`);
- the stream's life: counted from the start, the client attached, parked once caught up,
  its session closed when it ends (:class:`Opening`);
- how a stream the server cuts ends: the last bytes of a parked SSE stream or WebSocket
  (:func:`final_bytes`, :func:`final_frame`, from ticker.disconnect), a stuck writer's
  cancellation (:func:`cancel_when_stuck`, :func:`cut_while_stuck`) and the drop of a
  client behind a full buffer (:func:`drop_unless_read`).

The checks that come before an open (origin policy, connection cap, trusted proxy
headers) are the middleware's (ticker.middleware.cors, conncap; uvicorn's proxy
headers); the fast lane asks the same objects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, MutableMapping
from functools import partial
from typing import Any, TypeGuard

from ticker.disconnect import Disconnect, sse_last_words
from ticker.events import Event
from ticker.filters import Filter, stream_query
from ticker.frames import DROP_AFTER, chunk
from ticker.metrics import Metrics
from ticker.serve.parking import Parked, park
from ticker.serve.transport import DirectTransport
from ticker.stream.hub import Client, Hub
from ticker.stream.session import close_session, parse_last_id, track

__all__ = [
    "SSE_HEADERS",
    "Opening",
    "cancel_when_stuck",
    "cut_while_stuck",
    "drop_unless_read",
    "final_bytes",
    "final_frame",
    "opens_at_once",
    "sse_first",
    "stream_request",
]

# The event stream's own response headers; the middleware (or the fast lane, as it
# would) adds CORS, the security headers and the request id.
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
]


def stream_request(
    query: bytes, editions: tuple[str, ...], last_event_id: str | None = None
) -> tuple[Filter, str | None]:
    """The filter and the validated last event id of a stream request: the
    Last-Event-ID header (SSE) wins over the query's ``last_event_id``. A bad one
    raises ClientError (400 / 422, or close code 4400 on a WebSocket)."""
    f, query_last_id = stream_query(query, editions)
    last_id = parse_last_id(last_event_id, "Last-Event-ID")
    if last_id is None:
        last_id = parse_last_id(query_last_id, "last_event_id")
    return f, last_id


def opens_at_once(hub: Hub | None) -> TypeGuard[Hub]:
    """Whether a fresh stream opens without waiting: the hub has loaded the ticker and
    is not shutting down (else the endpoint waits, or cuts it after its first frames)."""
    return hub is not None and not hub.closing and hub.ready.is_set()


def sse_first(retry_ms: int, first: Iterable[Event]) -> bytes:
    """The first body of an event stream: the retry hint, then the snapshot (or the
    reset and snapshot, or the events a resume missed)."""
    return b"retry: %d\n\n" % retry_ms + b"".join(e.sse for e in first)


def final_bytes(retry_ms: int, reason: Disconnect) -> bytes:
    """What a parked event stream cut by the server gets before its connection closes."""
    if reason.rule.behind:
        return b""  # its buffer is full: close after what is queued
    words = sse_last_words(reason, retry_ms)
    return (chunk(words) if words else b"") + b"0\r\n\r\n"


def final_frame(reason: Disconnect) -> bytes:
    """What a parked WebSocket cut by the server gets: a close frame with the code."""
    return reason.ws_close()


class Opening:
    """One stream from its open to its end: counted from the start (``track``), its
    client once attached, and its session closed when it ends; a parked stream's
    when its connection ends (ticker.serve.parking)."""

    __slots__ = ("client", "count", "hub", "parked")

    def __init__(self, hub: Hub, metrics: Metrics | None, transport: str, f: Filter) -> None:
        self.hub = hub
        self.count = track(metrics, transport, f)
        self.client: Client | None = None
        self.parked = False

    def release(self) -> Callable[[], None]:
        """What ends the session, for the protocol that holds a parked connection."""
        return partial(close_session, self.hub, self.client, self.count)

    def park(self, scope: MutableMapping[str, Any], raw_send: Any, parked: Parked) -> bool:
        """Hand the connection to ``parked``; False if it cannot be (keep serving)."""
        self.parked = park(scope, raw_send, parked, self.release())
        return self.parked

    def close(self) -> None:
        """The call that opened the stream is over: end the session, unless parked."""
        if not self.parked:
            close_session(self.hub, self.client, self.count)


def cancel_when_stuck(writer: asyncio.Task[Any]) -> Callable[[Client], None]:
    """``Client.on_cut`` for a stream served by ``writer``: a write stuck on a full
    socket is cancelled, so the cut takes effect."""

    def on_cut(client: Client) -> None:
        if client.busy_since and client.direct is None:
            writer.cancel()

    return on_cut


def cut_while_stuck(client: Client, writer: asyncio.Task[Any]) -> bool:
    """On a CancelledError in ``writer``: True if it is the server's cut of a stuck
    write (uncancelled; the server then drops the connection), False to re-raise."""
    if client.closed in (None, Disconnect.GONE) or writer.cancelling() > 1:
        return False
    writer.uncancel()
    return True


async def drop_unless_read(transport: DirectTransport, reader: asyncio.Task[None]) -> None:
    """A client behind a full buffer has its last bytes queued: drop the connection if
    they are not read within DROP_AFTER, and return once the server has seen it go
    (``reader`` ends), or it would log an incomplete response."""
    asyncio.get_running_loop().call_later(DROP_AFTER, transport.abort)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(reader), DROP_AFTER + 1)

"""GET /v1/stream: the ticker as Server-Sent Events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ticker.disconnect import Disconnect, sse_last_words
from ticker.events import Event
from ticker.filters import Filter, stream_query
from ticker.frames import DROP_AFTER, chunk
from ticker.metrics import Metrics
from ticker.serve.parking import Parked, park
from ticker.serve.transport import DirectTransport, chunked_of, transport_of
from ticker.stream.hub import Client, Hub, Ping
from ticker.stream.reads import Store
from ticker.stream.session import close_session, open_session, parse_last_id, track

__all__ = ["HEADERS", "EventStream", "final_bytes", "stream_endpoint"]

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
]


def frames(batch: list[Event | Ping], resuming: bool) -> bytes:
    out = []
    for f in batch:
        if isinstance(f, Ping):
            # Mid-resume the hub may be behind the client: keep its id where it is.
            out.append(b": ping\n\n" if resuming else f.sse)
        else:
            out.append(f.sse)
    return b"".join(out)


class EventStream(Response):
    """A raw ASGI response that drains one client's buffer until it goes away."""

    def __init__(
        self,
        hub: Hub,
        store: Store,
        filter: Filter,
        last_id: str | None,
        *,
        limit: int,
        retry_ms: int,
        extra_headers: list[tuple[bytes, bytes]],
        metrics: Metrics | None = None,
    ) -> None:
        self.hub, self.store, self.filter, self.last_id = hub, store, filter, last_id
        self.metrics = metrics
        self.limit, self.retry_ms = limit, retry_ms
        self.extra_headers = extra_headers
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        count = track(self.metrics, "sse", self.filter)
        holder: list[Client] = []
        parked = False
        try:
            parked = await self._serve(scope, receive, send, holder, count)
        finally:
            if not parked:  # else when its connection ends (ticker.serve.parking)
                close_session(self.hub, holder[0] if holder else None, count)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        holder: list[Client],
        count: Callable[[Client | None], None],
    ) -> bool:
        """Serve the stream; True once it is parked (the response still open)."""
        task = asyncio.current_task()
        assert task is not None
        raw_send = scope.get("ticker.raw_send")
        transport = transport_of(raw_send)

        def on_cut(client: Client) -> None:
            if client.busy_since and client.direct is None:
                task.cancel()  # the writer is stuck on a full socket: drop it

        client, first = await open_session(
            self.hub,
            self.store,
            self.filter,
            self.last_id,
            transport="sse",
            limit=self.limit,
            on_cut=on_cut,
            metrics=self.metrics,
        )
        holder.append(client)
        # Until the response has started, a vanished client fails the send; from
        # then on a parked stream hears it from its own protocol, the rest from this.
        watcher: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": HEADERS + self.extra_headers,
                }
            )
            body = b"retry: %d\n\n" % self.retry_ms + b"".join(e.sse for e in first)
            # Not kept for the stream's lifetime: a replay or an old snapshot is big.
            del first
            await send({"type": "http.response.body", "more_body": True, "body": body})
            del body
            direct = transport is not None and chunked_of(raw_send) is True
            while not client.closed:
                if direct and client.go_direct(transport, "sse_chunk"):  # type: ignore[arg-type]
                    parked = Parked(client, transport, partial(final_bytes, self.retry_ms))
                    done = partial(close_session, self.hub, client, count)
                    if park(scope, raw_send, parked, done):
                        return True
                    watcher = watcher or _watch(receive, client)
                    await client.wait_closed()
                    break
                watcher = watcher or _watch(receive, client)
                batch = await client.next_batch()
                if not batch:
                    break
                client.busy_since = loop.time()
                await send(
                    {
                        "type": "http.response.body",
                        "more_body": True,
                        "body": frames(batch, client.after is not None),
                    }
                )
                client.busy_since = 0.0
            reason = client.closed or Disconnect.GONE
            if client.direct is not None and reason.rule.behind:
                # Its buffer is full: close after what is queued, then drop it.
                await _drop(client.direct, watcher or _watch(receive, client))
            elif reason is not Disconnect.GONE:
                # Shutdown or slow: end the response with a retry hint.
                last = sse_last_words(reason, self.retry_ms)
                await send({"type": "http.response.body", "body": last, "more_body": False})
        except asyncio.CancelledError:
            if client.closed in (None, Disconnect.GONE) or task.cancelling() > 1:
                raise
            # We cut this client while its write was stuck; the server drops the socket.
            task.uncancel()
        except OSError:
            pass
        finally:
            if watcher is not None:
                watcher.cancel()
        return False


def final_bytes(retry_ms: int, reason: Disconnect) -> bytes:
    """What a parked stream cut by the server gets before its connection closes."""
    if reason.rule.behind:
        return b""  # its buffer is full: close after what is queued
    words = sse_last_words(reason, retry_ms)
    return (chunk(words) if words else b"") + b"0\r\n\r\n"


async def _drop(transport: DirectTransport, watcher: asyncio.Task[None]) -> None:
    transport.close()
    loop = asyncio.get_running_loop()
    loop.call_later(DROP_AFTER, transport.abort)
    # Return only once the server has seen the connection go, or it would log
    # an incomplete response.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(watcher), DROP_AFTER + 1)


def _watch(receive: Receive, client: Client) -> asyncio.Task[None]:
    return asyncio.create_task(_watch_disconnect(receive, client))


async def _watch_disconnect(receive: Receive, client: Client) -> None:
    with contextlib.suppress(Exception):
        while (await receive())["type"] != "http.disconnect":
            pass
    client.cut(Disconnect.GONE)


async def stream_endpoint(request: Request) -> Response:
    state = request.state
    settings = state.settings
    f, query_last_id = stream_query(request.scope["query_string"], settings.editions)
    last_id = parse_last_id(request.headers.get("last-event-id"), "Last-Event-ID")
    if last_id is None:
        last_id = parse_last_id(query_last_id, "last_event_id")
    return EventStream(
        state.hub,
        state.store,
        f,
        last_id,
        limit=settings.client_queue_max,
        retry_ms=settings.sse_retry_ms,
        extra_headers=[],
        metrics=state.metrics,
    )

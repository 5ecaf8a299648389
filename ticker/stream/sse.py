"""GET /v1/stream: the ticker as Server-Sent Events."""

from __future__ import annotations

import asyncio
import contextlib
from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ticker.disconnect import Disconnect, sse_last_words
from ticker.events import Event
from ticker.filters import Filter
from ticker.metrics import Metrics
from ticker.serve.parking import Parked
from ticker.serve.transport import chunked_of, transport_of
from ticker.stream.hub import Client, Hub, Ping
from ticker.stream.opening import (
    SSE_HEADERS,
    Opening,
    cancel_when_stuck,
    cut_while_stuck,
    drop_unless_read,
    final_bytes,
    sse_first,
    stream_request,
)
from ticker.stream.reads import Store
from ticker.stream.session import open_session

__all__ = ["EventStream", "stream_endpoint"]


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
        opening = Opening(self.hub, self.metrics, "sse", self.filter)
        try:
            await self._serve(scope, receive, send, opening)
        finally:
            opening.close()

    async def _serve(self, scope: Scope, receive: Receive, send: Send, opening: Opening) -> None:
        """Serve the stream until it ends, or until it is parked (the response open)."""
        task = asyncio.current_task()
        assert task is not None
        raw_send = scope.get("ticker.raw_send")
        transport = transport_of(raw_send)
        client, first = await open_session(
            self.hub,
            self.store,
            self.filter,
            self.last_id,
            transport="sse",
            limit=self.limit,
            on_cut=cancel_when_stuck(task),
            metrics=self.metrics,
        )
        opening.client = client
        # Until the response has started, a vanished client fails the send; from
        # then on a parked stream hears it from its own protocol, the rest from this.
        watcher: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": SSE_HEADERS + self.extra_headers,
                }
            )
            body = sse_first(self.retry_ms, first)
            # Not kept for the stream's lifetime: a replay or an old snapshot is big.
            del first
            await send({"type": "http.response.body", "more_body": True, "body": body})
            del body
            direct = transport is not None and chunked_of(raw_send) is True
            while not client.closed:
                if direct and client.go_direct(transport, "sse_chunk"):  # type: ignore[arg-type]
                    parked = Parked(client, transport, partial(final_bytes, self.retry_ms))
                    if opening.park(scope, raw_send, parked):
                        return
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
                client.direct.close()
                await drop_unless_read(client.direct, watcher or _watch(receive, client))
            elif reason is not Disconnect.GONE:
                # Shutdown or slow: end the response with a retry hint.
                last = sse_last_words(reason, self.retry_ms)
                await send({"type": "http.response.body", "body": last, "more_body": False})
        except asyncio.CancelledError:
            if not cut_while_stuck(client, task):
                raise
        except OSError:
            pass
        finally:
            if watcher is not None:
                watcher.cancel()


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
    f, last_id = stream_request(
        request.scope["query_string"], settings.editions, request.headers.get("last-event-id")
    )
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

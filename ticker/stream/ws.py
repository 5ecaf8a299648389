"""GET /v1/ws: the ticker over WebSocket, one JSON text message per event."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from functools import partial

from redis.exceptions import RedisError
from starlette.websockets import WebSocket, WebSocketDisconnect

from ticker.disconnect import Disconnect
from ticker.exceptions import ClientError, UnavailableError
from ticker.filters import Filter, stream_query
from ticker.frames import DROP_AFTER
from ticker.serve.parking import ParkedWebSocket, park
from ticker.serve.transport import transport_of
from ticker.stream.hub import Client, Ping
from ticker.stream.session import close_session, open_session, parse_last_id, track
from ticker.stream.wsguard import MessageBudget

__all__ = ["final_frame", "ws_endpoint"]


async def ws_endpoint(websocket: WebSocket) -> None:
    state = websocket.state
    settings = state.settings
    await websocket.accept()
    try:
        f, query_last_id = stream_query(websocket.scope["query_string"], settings.editions)
        last_id = parse_last_id(query_last_id, "last_event_id")
    except ClientError as exc:
        await _refuse(websocket, Disconnect.BAD_REQUEST, exc.message[:120])
        return

    count = track(state.metrics, "ws", f)
    holder: list[Client] = []
    parked = False
    try:
        parked = await _serve(websocket, f, last_id, holder, count)
    finally:
        if not parked:  # else when its connection ends (ticker.serve.parking)
            close_session(state.hub, holder[0] if holder else None, count)


async def _serve(
    websocket: WebSocket,
    f: Filter,
    last_id: str | None,
    holder: list[Client],
    count: Callable[[Client | None], None],
) -> bool:
    """Serve the stream; True once it is parked (the connection still open)."""
    state = websocket.state
    settings = state.settings
    writer = asyncio.current_task()
    assert writer is not None

    raw_send = websocket.scope.get("ticker.raw_send")
    transport = transport_of(raw_send)

    def on_cut(client: Client) -> None:
        if client.busy_since and client.direct is None:
            writer.cancel()  # stuck on a full socket

    try:
        client, first = await open_session(
            state.hub,
            state.store,
            f,
            last_id,
            transport="ws",
            limit=settings.client_queue_max,
            on_cut=on_cut,
            metrics=state.metrics,
        )
    except (UnavailableError, RedisError, OSError):
        # Redis is needed to resume (or to load the ticker): come back later.
        await _refuse(websocket, Disconnect.TRY_AGAIN)
        return False
    holder.append(client)
    # Until the first frames are sent, a vanished client fails the send; from then
    # on a parked stream reads its own frames, the rest have this reader.
    reader: asyncio.Task[None] | None = None
    send = websocket.send
    loop = asyncio.get_running_loop()
    try:
        first.reverse()
        while first:
            # Popped, not kept for the stream's lifetime: a replay or an old snapshot is big.
            await send({"type": "websocket.send", "text": first.pop().text})
        while not client.closed:
            if transport is not None and client.go_direct(transport, "ws_frame"):
                parked = ParkedWebSocket(client, transport, final_frame, settings.ws_ping_seconds)
                done = partial(close_session, state.hub, client, count)
                if park(websocket.scope, raw_send, parked, done):
                    return True
                reader = reader or _reader(websocket, client)
                await client.wait_closed()
                break
            reader = reader or _reader(websocket, client)
            batch = await client.next_batch()
            client.busy_since = loop.time()
            for frame in batch:
                if not isinstance(frame, Ping):  # the protocol's own pings keep WS alive
                    await send({"type": "websocket.send", "text": frame.text})
            client.busy_since = 0.0
        direct, reason = client.direct, client.closed or Disconnect.GONE
        rule = reason.rule
        if direct is not None and rule.behind:
            # Behind a full buffer: queue the close frame, and drop it if never read.
            direct.write(reason.ws_close())
            loop.call_later(DROP_AFTER, direct.abort)
            reader = reader or _reader(websocket, client)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), DROP_AFTER + 1)
        elif rule.code is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(rule.code, rule.text), 1)
    except asyncio.CancelledError:
        if client.closed in (None, Disconnect.GONE) or writer.cancelling() > 1:
            raise
        writer.uncancel()  # cut while stuck: the server drops the connection
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass
    finally:
        if reader is not None:
            reader.cancel()
    return False


async def _refuse(websocket: WebSocket, reason: Disconnect, text: str | None = None) -> None:
    """Close an accepted WebSocket before its stream opens, with the reason's code."""
    await websocket.close(reason.code, reason.rule.text if text is None else text)


def final_frame(reason: Disconnect) -> bytes:
    """What a parked WebSocket cut by the server gets: a close frame with the code."""
    return reason.ws_close()


def _reader(websocket: WebSocket, client: Client) -> asyncio.Task[None]:
    return asyncio.create_task(_read(websocket, client))


async def _read(websocket: WebSocket, client: Client) -> None:
    """Drain what the client sends (nothing is expected) and notice when it leaves; a
    client flooding the server is cut (ticker.stream.wsguard)."""
    budget = MessageBudget()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(Exception):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if not budget.take(loop.time()):
                client.cut(Disconnect.FLOOD)
                return
    client.cut(Disconnect.GONE)

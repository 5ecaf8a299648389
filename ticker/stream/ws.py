"""GET /v1/ws: the ticker over WebSocket, one JSON text message per event."""

from __future__ import annotations

import asyncio
import contextlib

from redis.exceptions import RedisError
from starlette.websockets import WebSocket, WebSocketDisconnect

from ticker.disconnect import Disconnect
from ticker.exceptions import ClientError, UnavailableError
from ticker.filters import Filter
from ticker.serve.parking import ParkedWebSocket
from ticker.serve.transport import transport_of
from ticker.stream.hub import Client, Ping
from ticker.stream.opening import (
    Opening,
    cancel_when_stuck,
    cut_while_stuck,
    drop_unless_read,
    final_frame,
    stream_request,
)
from ticker.stream.session import open_session
from ticker.stream.wsguard import MessageBudget

__all__ = ["ws_endpoint"]


async def ws_endpoint(websocket: WebSocket) -> None:
    state = websocket.state
    await websocket.accept()
    try:
        f, last_id = stream_request(websocket.scope["query_string"], state.settings.editions)
    except ClientError as exc:
        await _refuse(websocket, Disconnect.BAD_REQUEST, exc.message[:120])
        return
    opening = Opening(state.hub, state.metrics, "ws", f)
    try:
        await _serve(websocket, f, last_id, opening)
    finally:
        opening.close()


async def _serve(websocket: WebSocket, f: Filter, last_id: str | None, opening: Opening) -> None:
    """Serve the stream until it ends, or until it is parked (the connection open)."""
    state = websocket.state
    settings = state.settings
    writer = asyncio.current_task()
    assert writer is not None
    raw_send = websocket.scope.get("ticker.raw_send")
    transport = transport_of(raw_send)
    try:
        client, first = await open_session(
            state.hub,
            state.store,
            f,
            last_id,
            transport="ws",
            limit=settings.client_queue_max,
            on_cut=cancel_when_stuck(writer),
            metrics=state.metrics,
        )
    except (UnavailableError, RedisError, OSError):
        # Redis is needed to resume (or to load the ticker): come back later.
        await _refuse(websocket, Disconnect.TRY_AGAIN)
        return
    opening.client = client
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
                if opening.park(websocket.scope, raw_send, parked):
                    return
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
        reason = client.closed or Disconnect.GONE
        if client.direct is not None and reason.rule.behind:
            # Behind a full buffer: queue the close frame, and drop it if never read.
            client.direct.write(reason.ws_close())
            await drop_unless_read(client.direct, reader or _reader(websocket, client))
        elif reason.rule.code is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(reason.code, reason.rule.text), 1)
    except asyncio.CancelledError:
        if not cut_while_stuck(client, writer):
            raise
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass
    finally:
        if reader is not None:
            reader.cancel()


async def _refuse(websocket: WebSocket, reason: Disconnect, text: str | None = None) -> None:
    """Close an accepted WebSocket before its stream opens, with the reason's code."""
    await websocket.close(reason.code, reason.rule.text if text is None else text)


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

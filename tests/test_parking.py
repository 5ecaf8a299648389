"""Parked streams (ticker.parking): once caught up, a stream's connection leaves the
ASGI call and uvicorn, and everything the call did still holds: events arrive, the
connection cap and the connection gauge count it until it closes, and a parked
WebSocket answers pings and the closing handshake, pings its client and drops a
silent one, and closes on protocol errors."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import orjson
import pytest
from websockets.asyncio.client import connect

from tests.support.helpers import is_item, sse, wait_for, ws
from tests.support.stack import Stack, running_stack
from ticker.config import Settings
from ticker.events import Event, envelope
from ticker.frames import ws_frame_size
from ticker.serve.parking import Parked, ParkedWebSocket
from ticker.stream.hub import Client

# Keepalive pings in the tests where a client must answer them in time.
PING_SECONDS = 1.0


def _clients(stack: Stack) -> list[Client]:
    return list(stack.api.app.state.hub.clients())


def _parked(stack: Stack) -> list[Parked]:
    """The hub's clients whose connection is held by a Parked protocol."""
    out = []
    for c in _clients(stack):
        protocol = c.direct.get_protocol() if c.direct is not None else None  # type: ignore[attr-defined]
        if isinstance(protocol, Parked):
            out.append(protocol)
    return out


async def _gauge(stack: Stack, transport: str) -> float:
    text = (await stack.http.get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("ticker_connections{") and f'transport="{transport}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize("path", ["fast lane", "asgi"])
@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_a_caught_up_stream_is_parked_and_still_gets_events(
    stack: Stack, transport: str, path: str
) -> None:
    """The ASGI call returns (uvicorn holds no task and no connection for it), events
    still arrive, the gauge counts the stream until the client leaves, and then the
    hub lets it go. Opened by the fast lane (ticker.fastlane) or, for a request it
    declines (here for its Content-Length header), by the ASGI endpoint."""
    server_state = stack.api.server.server_state
    headers = {} if path == "fast lane" else {"Content-Length": "0"}
    if transport == "sse":
        client = sse(stack.base, headers=headers)
    else:
        client = ws(stack.base, additional_headers=headers)
    async with client as c:
        assert (await c.next()).type == "snapshot"
        await wait_for(lambda: len(_parked(stack)) == 1, 5, what="the stream to be parked")
        kind = ParkedWebSocket if transport == "ws" else Parked
        assert type(_parked(stack)[0]) is kind
        # No ASGI task, and uvicorn's only connection left is the test's own HTTP client.
        assert not server_state.tasks
        assert len(server_state.connections) <= 1
        item = await stack.publish("Parked streams still get the news")
        await c.until(is_item("item.published", item["id"]))
        assert await _gauge(stack, transport) == 1
    await wait_for(lambda: not _clients(stack), 5, what="the hub to let the client go")
    assert await _gauge(stack, transport) == 0


async def test_a_parked_stream_holds_its_slot_under_the_cap(settings: Settings) -> None:
    """The cap counts a parked stream until its connection ends, not until the call
    that opened it returned."""
    async with running_stack(replace(settings, max_connections_per_ip=1)) as stack:
        async with sse(stack.base) as first:
            await first.next()
            await wait_for(lambda: len(_parked(stack)) == 1, 5, what="the stream to be parked")
            refused = await stack.http.get("/v1/stream")
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "too_many_connections"

        async def slot_freed() -> bool:
            async with sse(stack.base) as again:
                return (await again.next()).type == "snapshot"

        await wait_for(lambda: not _clients(stack), 5, what="the first stream to close")
        assert await slot_freed()


async def test_a_parked_websocket_answers_pings_and_the_closing_handshake(stack: Stack) -> None:
    async with ws(stack.base) as w:
        await w.next()
        await wait_for(lambda: len(_parked(stack)) == 1, 5, what="the stream to be parked")
        latency = await asyncio.wait_for(await w.conn.ping(b"are you there"), 5)
        assert latency >= 0
        await w.conn.close(1000, "bye")
        assert w.conn.close_code == 1000  # the server echoed our close frame
    await wait_for(lambda: not _clients(stack), 5, what="the hub to let the client go")


_SSE_REQUEST = b"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _ws_request(query: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /v1/ws{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


@asynccontextmanager
async def _raw_ws(
    stack: Stack, query: str = ""
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A WebSocket client that answers nothing, not even pings."""
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.api.port)
    writer.write(_ws_request(query))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    try:
        yield reader, writer
    finally:
        writer.close()


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One frame from the server: its opcode and payload (servers do not mask)."""
    head = await reader.readexactly(2)
    length = head[1] & 0x7F
    if length == 126:
        head += await reader.readexactly(2)
    elif length == 127:
        head += await reader.readexactly(8)
    size = ws_frame_size(head, 0)
    assert size is not None
    return head[0] & 0x0F, await reader.readexactly(size[0])


async def _frames_until_close(reader: asyncio.StreamReader, timeout: float) -> tuple[int, int]:
    """Read server frames until a close frame: (its code, how many pings came first)."""
    pings = 0
    async with asyncio.timeout(timeout):
        while True:
            opcode, payload = await _read_frame(reader)
            if opcode == 0x9:
                pings += 1
            elif opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0], pings


def _masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + body


async def test_a_silent_parked_websocket_is_pinged_then_dropped_with_1011(
    settings: Settings,
) -> None:
    """Pinged every ws_ping_seconds; a client answering nothing is closed with 1011,
    while one that answers (the websockets library does) stays."""
    # The answering client shares the server's event loop: an interval well above a
    # loaded machine's scheduling delays, so its pongs are never late.
    async with running_stack(replace(settings, ws_ping_seconds=PING_SECONDS)) as stack:
        url = stack.base.replace("http://", "ws://") + "/v1/ws"
        async with _raw_ws(stack) as (reader, _), connect(url) as answering:
            await answering.recv()
            await wait_for(lambda: len(_parked(stack)) == 2, 5, what="both to be parked")
            code, pings = await _frames_until_close(reader, 10)
            assert code == 1011
            assert pings >= 1
            item = await stack.publish("The answering client is still here")
            while True:  # snapshot done; skip to the item
                message = await asyncio.wait_for(answering.recv(), 5)
                if item["id"] in str(message):
                    break


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x81\x05hello", 1002),  # unmasked: clients must mask (RFC 6455 5.1)
        (bytes((0x80 | 0x3, 0x80)) + b"\x00\x00\x00\x00", 1002),  # no such opcode
        (bytes((0xC1, 0x80)) + b"\x00\x00\x00\x00", 1002),  # an extension bit never agreed
        (b"\x81\xff" + struct.pack("!Q", 1 << 20) + b"\x00" * 4, 1009),  # over 64 KiB
    ],
)
async def test_a_parked_websocket_closes_on_a_bad_frame(
    stack: Stack, frame: bytes, code: int
) -> None:
    async with _raw_ws(stack) as (reader, writer):
        await wait_for(lambda: len(_parked(stack)) == 1, 5, what="the stream to be parked")
        writer.write(_masked(0x9, b"ping first"))  # a good frame first: answered
        writer.write(frame)
        got, _ = await _frames_until_close(reader, 5)
        assert got == code
    await wait_for(lambda: not _clients(stack), 5, what="the hub to let the client go")


async def test_a_parked_websocket_frame_split_across_reads_is_understood(stack: Stack) -> None:
    """TCP may cut a frame anywhere: a ping sent a byte at a time is still answered."""
    async with _raw_ws(stack) as (reader, writer):
        await wait_for(lambda: len(_parked(stack)) == 1, 5, what="the stream to be parked")
        for byte in _masked(0x9, b"slowly"):
            writer.write(bytes((byte,)))
            await writer.drain()
            await asyncio.sleep(0.005)
        async with asyncio.timeout(5):
            while True:
                b0, b1 = await reader.readexactly(2)
                payload = await reader.readexactly(b1 & 0x7F)
                if b0 & 0x0F == 0xA:
                    assert payload == b"slowly"
                    break


@pytest.mark.parametrize("code", [1001, 1012, 4321])
async def test_a_parked_websocket_closed_by_the_client_frees_everything(
    stack: Stack, code: int
) -> None:
    async with _raw_ws(stack) as (reader, writer):
        await wait_for(lambda: len(_parked(stack)) == 1, 5, what="the stream to be parked")
        writer.write(_masked(0x8, struct.pack("!H", code) + b"going away"))
        echoed, _ = await _frames_until_close(reader, 5)
        assert echoed == code
        assert await asyncio.wait_for(reader.read(), 5) == b""  # then the server closes
    await wait_for(lambda: not _clients(stack), 5, what="the hub to let the client go")


async def _answering(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pings: int
) -> tuple[str, int]:
    """Answer the server's pings until it has sent ``pings`` of them (each one sent
    means the previous pong kept the connection): ("alive", pongs it sent us) or, if
    it closes first, ("close", code)."""
    pongs = 0
    async with asyncio.timeout(10 * PING_SECONDS * pings):
        while pings:
            opcode, payload = await _read_frame(reader)
            if opcode == 0x9:
                writer.write(_masked(0xA, payload))
                pings -= 1
            elif opcode == 0xA:
                pongs += 1
            elif opcode == 0x8:
                return "close", struct.unpack("!H", payload[:2])[0]
    return "alive", pongs


def _heard(stack: Stack) -> bool:
    """The server has read what the client sent after the handshake: uvicorn's
    WebSocket protocol counted a read, or (if the connection was parked first) the
    parked protocol holds the half frame or counted the message."""
    connections = stack.api.server.server_state.connections
    if any(getattr(p, "reads", 0) >= 1 for p in connections):
        return True
    return any(
        p.inbox or p.budget is not None for p in _parked(stack) if isinstance(p, ParkedWebSocket)
    )


@pytest.mark.parametrize("early", ["message", "half a frame"])
async def test_a_websocket_that_spoke_before_it_could_park_is_served_to_the_end(
    settings: Settings, early: str
) -> None:
    """A client that sends something while its resume is read (a message left queued,
    reading paused, or a frame half read) stays on the general path: answered,
    kept alive by its pongs, still getting events."""
    async with running_stack(replace(settings, ws_ping_seconds=PING_SECONDS)) as stack:
        first = await stack.publish("Before the reconnect")
        async with _raw_ws(stack, f"?last_event_id={first['event_id']}") as (reader, writer):
            ping = _masked(0x9, b"mine")
            writer.write(_masked(0x1, b"hello") if early == "message" else ping[:2])
            # The frame's rest goes in a read of its own, once the server read its start.
            await wait_for(lambda: _heard(stack), 5, what="the server to read the early bytes")
            if early != "message":
                writer.write(ping[2:])
            state, pongs = await _answering(reader, writer, pings=2)
            assert state == "alive"
            assert early == "message" or pongs == 1
            await stack.publish("Still on time")
            async with asyncio.timeout(5):
                while b"Still on time" not in await reader.read(65536):
                    pass


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_a_parked_client_that_stops_reading_and_goes_quiet_is_dropped(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    """A client with a full buffer that half-closes (SSE) or answers no ping (WS) is
    dropped within DROP_AFTER, and everything it held is released."""
    monkeypatch.setattr("ticker.serve.parking.DROP_AFTER", 0.5)
    async with running_stack(replace(settings, ws_ping_seconds=0.3)) as stack:
        hub = stack.api.app.state.hub
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", stack.api.port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(_ws_request("") if transport == "ws" else _SSE_REQUEST)
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        await wait_for(lambda: len(_parked(stack)) == 1, 5, what="the stream to be parked")
        direct = _clients(stack)[0].direct
        assert direct is not None
        n = 0
        while direct.get_write_buffer_size() < 100_000:
            n += 1
            ms, seq = hub.last_key
            item = {"id": f"x{n}", "edition": "en", "summary": "x" * 30_000}
            body = orjson.dumps({"type": "item.published", "item": item})
            hub.dispatch(Event(envelope(f"{ms}-{seq + 1}", body)))
            await asyncio.sleep(0)
        if transport == "sse":
            sock.shutdown(socket.SHUT_WR)
        await wait_for(lambda: not _clients(stack), 5, what="the quiet client to be dropped")
        assert await _gauge(stack, transport) == 0
        writer.transport.abort()


async def test_a_parked_websocket_pinging_without_pause_is_cut_with_1008(stack: Stack) -> None:
    """Each ping costs the server a pong: pings count against the client's budget."""
    async with _raw_ws(stack) as (reader, writer):
        await wait_for(lambda: len(_parked(stack)) == 1, 5, what="the stream to be parked")
        writer.write(b"".join(_masked(0x9, b"p") for _ in range(200)))
        code, _ = await _frames_until_close(reader, 5)
        assert code == 1008

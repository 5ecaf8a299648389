"""RFC 6455 framing errors from a WebSocket client: a continuation frame with no message
started is closed with 1002, a text message that is not UTF-8 with 1007; on the parked
connection (ticker/parking.py) and on the server's WebSocket protocol (the general path:
a connection the app reads, not parked), over real sockets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.frames import Frame, Opcode

from tests.support.helpers import wait_for
from tests.support.stack import running_stack
from ticker.config import Settings
from ticker.serve.parking import WebSocketProtocol
from ticker.serve.server import TickerServer, bind, server_config
from ticker.stream.wsguard import MessageCheck

KEY = base64.b64encode(os.urandom(16)).decode()
HANDSHAKE = (
    "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()


def frame(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    """A client frame (masked), whatever the state of the connection."""
    return Frame(opcode, data, fin=fin).serialize(mask=True, extensions=[])


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One server frame (unmasked): opcode and payload."""
    b0, b1 = await reader.readexactly(2)
    length = b1 & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return b0 & 0x0F, await reader.readexactly(length)


async def _echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()


@contextlib.asynccontextmanager
async def general_server(settings: Settings) -> AsyncIterator[int]:
    """The server's protocols (server_config: httptools with the limits, and
    ticker.serve.parking.WebSocketProtocol) under an app that reads its WebSocket itself."""
    app = Starlette(routes=[WebSocketRoute("/v1/ws", _echo)])
    config = server_config(app, settings, log_level="warning")  # type: ignore[arg-type]
    assert config.ws is WebSocketProtocol
    sock = bind("127.0.0.1", 0)
    server = TickerServer(config, app)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_for(lambda: server.started, 10, what="the server")
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture(params=["parked", "general"])
async def port(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[int]:
    """The port of the service (whose WebSockets are parked at once), or of the server's
    protocols under an app that reads its WebSocket itself."""
    if request.param == "parked":
        async with running_stack(settings) as stack:
            yield stack.api.port
    else:
        async with general_server(settings) as general:
            yield general


async def close_code(port: int, bad: bytes) -> int:
    """Send ``bad`` once the first message has arrived; the close code that answers it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(HANDSHAKE)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        opcode, _ = await asyncio.wait_for(read_frame(reader), 10)  # the snapshot, or hello
        assert opcode == Opcode.TEXT
        writer.write(bad)
        while True:
            opcode, payload = await asyncio.wait_for(read_frame(reader), 10)
            if opcode == Opcode.CLOSE:
                return int.from_bytes(payload[:2], "big")
    finally:
        writer.close()


CASES = [
    ("continuation with no start", frame(Opcode.CONT, b"tail"), 1002),
    ("text frame, invalid UTF-8", frame(Opcode.TEXT, b"ok \xff\xfe"), 1007),
    (
        "fragmented text, invalid UTF-8 across frames",
        frame(Opcode.TEXT, b"caf\xc3", fin=False) + frame(Opcode.CONT, b"\x28"),
        1007,
    ),
    (
        "a new message inside a fragmented one",
        frame(Opcode.TEXT, b"a", fin=False) + frame(Opcode.TEXT, b"b"),
        1002,
    ),
]


@pytest.mark.parametrize(("name", "bad", "code"), CASES, ids=[c[0] for c in CASES])
async def test_framing_errors_close_with_the_rfc_code(
    port: int, caplog: pytest.LogCaptureFixture, name: str, bad: bytes, code: int
) -> None:
    """Each framing error closes the connection with its RFC 6455 code, and logs no
    traceback (the client's mistake is not the server's error)."""
    with caplog.at_level(logging.INFO):
        assert await close_code(port, bad) == code
    assert not [r for r in caplog.records if r.exc_info], caplog.text


async def test_valid_fragmented_text_is_accepted(port: int) -> None:
    """A well-formed fragmented UTF-8 message (split inside a character), then a ping, are
    read without a close: the pong comes back."""
    good = frame(Opcode.TEXT, b"caf\xc3", fin=False) + frame(Opcode.CONT, b"\xa9")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(HANDSHAKE)
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert (await asyncio.wait_for(read_frame(reader), 10))[0] == Opcode.TEXT
        writer.write(good + frame(Opcode.PING, b"p"))
        while True:
            opcode, payload = await asyncio.wait_for(read_frame(reader), 10)
            assert opcode != Opcode.CLOSE, payload
            if opcode == Opcode.PONG:
                assert payload == b"p"
                break
    finally:
        writer.close()


def test_message_check_follows_rfc_6455() -> None:
    """MessageCheck (pure): fragments in order and UTF-8 split across frames pass; a stray
    continuation, an interleaved start or a bad byte get 1002 / 1002 / 1007."""
    check = MessageCheck()
    assert check.frame(0x1, False, b"caf\xc3") is None
    assert check.frame(0x0, True, b"\xa9") is None  # the continuation ends it
    assert check.frame(0x2, False, b"\xff") is None  # binary is not decoded
    assert check.frame(0x0, True, b"\xff") is None
    assert MessageCheck().frame(0x0, True, b"") == 1002
    started = MessageCheck()
    assert started.frame(0x1, False, b"a") is None
    assert started.frame(0x2, True, b"b") == 1002
    assert MessageCheck().frame(0x1, True, b"\xc3") == 1007  # truncated at the end

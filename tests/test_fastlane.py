"""The fast lane (ticker.fastlane): uvicorn's HTTP protocol opens a plain stream
itself. It answers byte for byte as the ASGI path does, and everything it does not
answer (refusals, resumes, pipelined or unusual requests) gets the ASGI path's
answer. A ``Content-Length: 0`` header sends a request down the ASGI path without
changing what it asks for, so the two answers can be compared."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import orjson
import pytest

from tests.support.helpers import is_item, wait_for
from tests.support.stack import Stack, running_stack
from ticker.config import Settings
from ticker.serve.fastlane import StreamLane
from ticker.serve.parking import Parked, ParkedWebSocket
from ticker.stream.hub import Client

ASGI_PATH = "Content-Length: 0\r\n"  # the lane declines a request with this header


def _lane(stack: Stack) -> StreamLane:
    lane: StreamLane = stack.api.server.config.http_protocol_class.lane  # type: ignore[attr-defined]
    return lane


def _spy(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What the lane answered, in order: True where it opened the stream."""
    lane, answers = _lane(stack), []
    for name in ("open_sse", "open_ws"):
        real = getattr(lane, name)

        def spy(p: object, real: object = real) -> bool:
            took: bool = real(p)  # type: ignore[operator]
            answers.append(took)
            return took

        monkeypatch.setattr(lane, name, spy)
    return answers


def _clients(stack: Stack) -> list[Client]:
    return list(stack.api.app.state.hub.clients())


def _sse_request(extra: str = "", query: str = "") -> bytes:
    return (
        f"GET /v1/stream{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: req-1\r\n{extra}\r\n"
    ).encode()


def _ws_request(extra: str = "", key: str = "") -> bytes:
    key = key or base64.b64encode(os.urandom(16)).decode()
    return (
        "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


@asynccontextmanager
async def _raw(
    stack: Stack, request: bytes
) -> AsyncIterator[tuple[bytes, asyncio.StreamReader, asyncio.StreamWriter]]:
    """Send ``request`` in one write; the response head without its date line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.api.port)
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"date:")]
    try:
        yield b"\r\n".join(lines), reader, writer
    finally:
        writer.close()


async def _first_chunk(reader: asyncio.StreamReader) -> bytes:
    size = int(await asyncio.wait_for(reader.readuntil(b"\r\n"), 5), 16)
    return await asyncio.wait_for(reader.readexactly(size + 2), 5)


async def _first_frame(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readexactly(2), 5)
    length = head[1] & 0x7F
    if length == 126:
        extended = await reader.readexactly(2)
        head += extended
        length = int.from_bytes(extended, "big")
    return head + await asyncio.wait_for(reader.readexactly(length), 5)


SSE_CASES = {
    "plain": ("", ("*",)),
    "origin, any allowed": ("Origin: https://news.example\r\n", ("*",)),
    "origin on the allowlist": ("Origin: https://news.example\r\n", ("https://news.example",)),
    "same origin": ("Origin: http://127.0.0.1\r\n", ("https://news.example",)),
    "https by a trusted proxy": ("X-Forwarded-Proto: https\r\n", ("*",)),
}


@pytest.mark.parametrize("case", SSE_CASES)
async def test_sse_the_lane_answers_as_the_asgi_path(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    extra, origins = SSE_CASES[case]
    async with running_stack(replace(settings, allowed_origins=origins)) as stack:
        answers = _spy(stack, monkeypatch)
        async with _raw(stack, _sse_request(extra)) as (lane_head, reader, _):
            lane_body = await _first_chunk(reader)
        async with _raw(stack, _sse_request(extra + ASGI_PATH)) as (asgi_head, reader, _):
            asgi_body = await _first_chunk(reader)
        assert answers == [True]  # the second request never reached the lane
        assert lane_head == asgi_head
        assert lane_body == asgi_body
        assert b"x-request-id: req-1" in lane_head
        if "https" in case:
            assert b"strict-transport-security" in lane_head


async def test_ws_the_lane_answers_as_the_asgi_path(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = _spy(stack, monkeypatch)
    key = base64.b64encode(os.urandom(16)).decode()
    async with _raw(stack, _ws_request(key=key)) as (lane_head, reader, _):
        lane_frame = await _first_frame(reader)
    async with _raw(stack, _ws_request(ASGI_PATH, key=key)) as (asgi_head, reader, _):
        asgi_frame = await _first_frame(reader)
    assert answers == [True, False]
    assert lane_head == asgi_head
    assert lane_frame == asgi_frame
    assert orjson.loads(lane_frame[2:])["type"] == "snapshot"


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_a_stream_the_lane_opened_is_parked_and_gets_events(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    answers = _spy(stack, monkeypatch)
    request = _sse_request() if transport == "sse" else _ws_request()
    async with _raw(stack, request) as (_, reader, _writer):
        await (_first_chunk(reader) if transport == "sse" else _first_frame(reader))
        assert answers == [True]
        (client,) = _clients(stack)
        protocol = client.direct.get_protocol()  # type: ignore[union-attr]
        assert type(protocol) is (Parked if transport == "sse" else ParkedWebSocket)
        assert not stack.api.server.server_state.tasks  # no ASGI call was made
        item = await stack.publish("The lane's streams get the news")
        data = await (_first_chunk(reader) if transport == "sse" else _first_frame(reader))
        assert item["id"].encode() in data
        assert b"item.published" in data
    await wait_for(lambda: not _clients(stack), 5, what="the hub to let the client go")


DECLINED = {
    "refused origin": (_sse_request("Origin: https://evil.example\r\n"), 403),
    "bad query": (_sse_request(query="?edition=nope"), 400),
    "bad last id": (_sse_request("Last-Event-ID: nope\r\n"), 400),
    "HTTP/1.0": (_sse_request().replace(b"HTTP/1.1", b"HTTP/1.0"), 200),
    "Connection: close": (_sse_request("Connection: close\r\n"), 200),
    "repeated header": (_sse_request("X-Request-Id: req-2\r\n"), 200),
}


@pytest.mark.parametrize("case", DECLINED)
async def test_what_the_lane_declines_gets_the_asgi_answer(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    request, status = DECLINED[case]
    stack_settings = replace(settings, allowed_origins=("https://news.example",))
    async with running_stack(stack_settings) as stack:
        answers = _spy(stack, monkeypatch)
        async with _raw(stack, request) as (head, _, _):
            assert head.split(b" ")[1] == str(status).encode(), head
        assert answers == [False]


WS_DECLINED = {
    "Upgrade given twice": (_ws_request("Upgrade: websocket\r\n"), 426),
    "Connection not a token list": (
        _ws_request().replace(b"Connection: Upgrade", b"Connection: Upgrade, keep alive"),
        400,
    ),
    "subprotocol asked for": (_ws_request("Sec-WebSocket-Protocol: chat\r\n"), 101),
    "bad key": (_ws_request(key="c2hvcnQ="), 400),
    "fragment in the target": (_ws_request().replace(b"/v1/ws", b"/v1/ws#x"), 403),
}


@pytest.mark.parametrize("case", WS_DECLINED)
async def test_a_handshake_websockets_would_answer_otherwise_takes_the_asgi_path(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    request, status = WS_DECLINED[case]
    answers = _spy(stack, monkeypatch)
    async with _raw(stack, request) as (head, _, _):
        assert head.split(b" ")[1] == str(status).encode(), head
    assert answers in ([False], [])  # declined, or never offered (uvicorn's own checks)


async def test_server_settings_the_lane_does_not_mirror_turn_it_off(settings: Settings) -> None:
    from ticker.app import create_app
    from ticker.serve.server import server_config

    for overrides in ({}, {"ws_per_message_deflate": True}, {"root_path": "/ticker"}):
        app = create_app(settings)
        config = server_config(app, settings, **overrides)
        config.load()
        lane: StreamLane = config.http_protocol_class.lane  # type: ignore[attr-defined]
        lane.configure(config)
        assert lane.enabled is (not overrides), overrides


async def test_a_resume_takes_the_asgi_path(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    first = await stack.publish("Before the client left")
    second = await stack.publish("While it was away")
    answers = _spy(stack, monkeypatch)
    request = _sse_request(f"Last-Event-ID: {first['event_id']}\r\n")
    async with _raw(stack, request) as (head, reader, _):
        assert head.startswith(b"HTTP/1.1 200")
        data = await _first_chunk(reader)
        assert second["id"].encode() in data and first["id"].encode() not in data
    assert answers == [False]


async def test_a_pipelined_request_takes_the_asgi_path(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes after the stream's request in the same read are not the lane's to drop."""
    answers = _spy(stack, monkeypatch)
    request = _sse_request() + b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    async with _raw(stack, request) as (head, reader, _):
        assert head.startswith(b"HTTP/1.1 200")
        assert b"snapshot" in await _first_chunk(reader)
    assert answers == []


async def test_the_cap_counts_the_address_a_trusted_proxy_gives(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a trusted proxy (127.0.0.1 by default) the lane counts streams by
    X-Forwarded-For, as the ASGI path does, and refuses through it at the cap."""
    async with running_stack(replace(settings, max_connections_per_ip=1)) as stack:
        answers = _spy(stack, monkeypatch)
        same = _sse_request("X-Forwarded-For: 203.0.113.5\r\n")
        async with _raw(stack, same) as (head, _, _):
            assert head.startswith(b"HTTP/1.1 200")
            async with _raw(stack, same) as (refused, _, _):
                assert refused.startswith(b"HTTP/1.1 429")
            other = _sse_request("X-Forwarded-For: 203.0.113.6\r\n")
            async with _raw(stack, other) as (head, _, _):
                assert head.startswith(b"HTTP/1.1 200")
            assert answers == [True, False, True]
        await wait_for(lambda: not _clients(stack), 5, what="the streams to close")
        assert _lane(stack).cap.open == {}  # type: ignore[union-attr]


async def test_the_lane_is_off_for_a_gate_it_does_not_know() -> None:
    """A layer the lane does not mirror turns it off rather than being skipped."""
    from ticker.app import create_app

    app = create_app(Settings(api_keys="[]"))
    assert StreamLane(app.state.streams).enabled

    class Extra:
        def __init__(self, app: object) -> None:
            self.app = app

    assert not StreamLane(Extra(app.state.streams)).enabled
    assert not StreamLane(None).enabled


async def test_a_websocket_the_lane_opened_is_published_to_and_closes(stack: Stack) -> None:
    """End to end with a real client library: snapshot, an event, a clean close."""
    from tests.support.helpers import ws

    async with ws(stack.base) as w:
        assert (await w.next()).type == "snapshot"
        item = await stack.publish("Through the lane")
        await w.until(is_item("item.published", item["id"]))
        await w.conn.close(1000, "bye")
        assert w.conn.close_code == 1000
    await wait_for(lambda: not _clients(stack), 5, what="the hub to let the client go")


async def test_the_lane_logs_an_accepted_websocket_as_uvicorn_does(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The line uvicorn logs at info for an accepted WebSocket, with the path, the
    query and the request id, for a handshake the lane answered."""
    import logging

    from ticker.logs import request_id

    answers = _spy(stack, monkeypatch)
    lines: list[tuple[str, str | None]] = []
    handler = logging.Handler()
    handler.emit = lambda r: lines.append((r.getMessage(), request_id.get()))  # type: ignore[method-assign]
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    request = _ws_request("X-Request-Id: ws-req-7\r\n").replace(b"/v1/ws", b"/v1/ws?edition=en")
    try:
        async with _raw(stack, request) as (_head, reader, _):
            await _first_frame(reader)
    finally:
        logger.removeHandler(handler)
    assert answers == [True]
    accepted = [(m, rid) for m, rid in lines if "[accepted]" in m]
    assert len(accepted) == 1, lines
    message, rid = accepted[0]
    assert message.startswith("127.0.0.1:")
    assert message.endswith('"WebSocket /v1/ws?edition=en" [accepted]')
    assert rid == "ws-req-7"

"""Hostile input: oversize, malformed and deeply nested bodies, wrong content types, and
WebSocket clients sending junk, huge frames or floods. Each refusal is a clear 4xx (or a
named close code) and changes nothing: no item, no queued job, no event on any stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.helpers import SSEStream, is_item, sse, ws
from tests.support.stack import KEYS, Stack, auth, running_stack
from ticker.config import Settings
from ticker.constants import CLOSE_POLICY
from ticker.stream.wsguard import BURST, MessageBudget

JSON = {"Content-Type": "application/json"}


async def assert_nothing_changed(stack: Stack, watcher: SSEStream) -> None:
    """No item, no job, no event; and the next event the stream gets is a fresh item."""
    assert await stack.redis.keys(stack.keys.item("*")) == []
    # (The expiry sweep, an arq cron job, may be queued at :00 and :30; item jobs may not.)
    queued = await stack.redis.zrange(stack.keys.queue, 0, -1)
    assert [j for j in queued if j.split(b":")[0] in (b"ingest", b"change", b"expire")] == []
    assert await stack.events() == []
    item = await stack.publish("Marker after the hostile requests")
    got = await watcher.next(10)
    assert got.type == "item.published" and got.data["item"]["id"] == item["id"]


@pytest.fixture
async def watcher(stack: Stack) -> AsyncIterator[SSEStream]:
    async with sse(stack.base) as s:
        assert (await s.next()).type == "snapshot"
        yield s


async def _chunks(total: int, size: int = 8192) -> AsyncIterator[bytes]:
    yield b'{"edition": "en", "headline": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}'


async def test_oversize_bodies_get_413(stack: Stack, watcher: SSEStream) -> None:
    """Bodies over TICKER_MAX_BODY_BYTES get a 413 naming the body, whether declared by
    Content-Length or streamed chunked without one, on POST and PATCH."""
    limit = stack.settings.max_body_bytes
    big = b'{"headline": "' + b"x" * (limit + 10) + b'", "edition": "en"}'
    r = await stack.http.post("/v1/items", content=big, headers={**auth(), **JSON})
    assert r.status_code == 413 and r.json()["error"]["field"] == "body"
    r = await stack.http.post("/v1/items", content=_chunks(limit * 3), headers={**auth(), **JSON})
    assert "content-length" not in r.request.headers
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    r = await stack.http.patch("/v1/items/" + "0" * 32, content=big, headers={**auth(), **JSON})
    assert r.status_code in (404, 413)  # the item is looked up first
    await assert_nothing_changed(stack, watcher)


async def test_trickled_body_gets_408(settings: Settings) -> None:
    """A body that stops arriving (slowloris) gets a 408 naming the body once
    TICKER_BODY_TIMEOUT_SECONDS pass, instead of holding the request open."""
    async with running_stack(replace(settings, body_timeout_seconds=0.5)) as stack:
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.api.port)
        head = (
            "POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {KEYS['editor']}\r\nContent-Length: 100\r\n\r\n"
        )
        writer.write(head.encode() + b'{"headline": "Sl')
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 5)  # the 408 comes in time
        assert status.split()[1] == b"408", status
        length = 0
        while (line := await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        error = orjson.loads(await asyncio.wait_for(reader.readexactly(length), 10))["error"]
        assert error["field"] == "body" and error["code"] == "timeout"
        writer.close()
        assert await stack.redis.keys(stack.keys.item("*")) == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b'{"headline": "\xff\xfe", "edition": "en"}', 400, "body"),
        (b'{"headline": "caf\xe9", "edition": "en"}', 400, "body"),  # Latin-1, not UTF-8
        (b"\xef\xbb\xbf" + b'{"headline": "bom", "edition": "en"}', 400, "body"),
        (b"[" * 10_000 + b"]" * 10_000, 400, "body"),
        (b'{"a": ' * 5000 + b"1" + b"}" * 5000, 400, "body"),
        (
            b'{"headline": "x", "edition": "en", "tags": ' + b"[" * 1000 + b"]" * 1000 + b"}",
            422,
            "tags",
        ),
        (
            b'{"headline": "x", "edition": "en", "pinned": '
            b'{"a": {"b": {"c": {"d": {"e": {"f": {"g": {}}}}}}}}}',
            422,
            "pinned",
        ),
        (b'{"headline": "x", "edition": "en", "urgency": 1e400}', 400, "body"),
        (
            b'{"headline": "x", "edition": "en", "urgency": 100000000000000000000000}',
            422,
            "urgency",
        ),
        (b'{"headline": "x", "edition": "en", "urgency": NaN}', 400, "body"),
        (b'{"headline": "x", "edition": "en"} trailing', 400, "body"),
        (b"", 400, "body"),
        (b"null", 422, None),
        (b'"just a string"', 422, None),
    ],
)
async def test_malformed_bodies_are_clean_4xx(
    stack: Stack, watcher: SSEStream, body: bytes, status: int, field: str | None
) -> None:
    """Invalid UTF-8, depth bombs (10,000 nested arrays), huge numbers and non-objects get a
    4xx JSON error naming the field, never a 5xx."""
    r = await stack.http.post("/v1/items", content=body, headers={**auth(), **JSON})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"]
    if field is not None:
        assert error["field"] == field
    await assert_nothing_changed(stack, watcher)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json-patch+json",
        "application/xml",
        "text/json",
    ],
)
async def test_wrong_content_types_get_415(
    stack: Stack, watcher: SSEStream, content_type: str | None
) -> None:
    """Anything but application/json is refused with 415 naming Content-Type."""
    headers = auth() | ({"Content-Type": content_type} if content_type else {})
    body = b'{"headline": "Typed wrong", "edition": "en"}'
    r = await stack.http.post("/v1/items", content=body, headers=headers)
    assert r.status_code == 415, r.text
    assert r.json()["error"]["field"] == "Content-Type"
    await assert_nothing_changed(stack, watcher)


def test_message_budget_allows_a_burst_then_the_rate() -> None:
    """The flood guard lets a burst through, then only the sustained rate."""
    budget = MessageBudget(rate=5, burst=10)
    assert all(budget.take(0.0) for _ in range(10))
    assert not budget.take(0.0)
    assert budget.take(0.2)  # one token back after 1/5 s
    assert not budget.take(0.2)
    assert all(budget.take(10.0 + i) for i in range(100))  # a steady 1/s is fine


async def _on_time(stack: Stack, *streams: object, within: float = 5.0) -> None:
    """Publish one item; every stream has it within ``within`` seconds (else it fails)."""
    async with asyncio.timeout(within):
        item = await stack.publish("Still on time", timeout=within)
        for s in streams:
            await s.until(is_item("item.published", item["id"]), within)  # type: ignore[attr-defined]


async def test_websocket_junk_is_ignored(stack: Stack) -> None:
    """Text junk, JSON, control bytes and binary frames from a client are dropped; the
    client stays connected and keeps getting events."""
    async with ws(stack.base) as w:
        await w.next()
        for junk in ["hello", "{}", '{"type": "subscribe"}', "\x00\x01", "😀" * 100]:
            await w.conn.send(junk)
        await w.conn.send(b"\x00\xff" * 100)
        await w.conn.send(b"")
        await _on_time(stack, w)


@pytest.mark.parametrize(
    ("compression", "size"),
    [(None, 100_000), ("deflate", 100_000)],  # plain, and a client asking for compression
)
async def test_websocket_huge_frame_closes_1009(
    stack: Stack, compression: str | None, size: int
) -> None:
    """A message over 64 KiB closes that connection with 1009; others are untouched. The
    server declines permessage-deflate (frames are encoded once for all clients), so no
    small compressed frame can inflate into a huge one."""
    async with ws(stack.base) as bystander, ws(stack.base, compression=compression) as w:
        await bystander.next()
        await w.next()
        assert not w.conn.protocol.extensions
        await w.conn.send("x" * size)
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(w.conn.recv(), 10)
        assert w.conn.close_code == 1009
        await _on_time(stack, bystander)


@pytest.mark.timeout(120)
async def test_websocket_flood_is_cut_with_1008(stack: Stack, watcher: SSEStream) -> None:
    """A client sending thousands of messages is closed with 1008 (policy); meanwhile other
    WebSocket and SSE clients still get events on time."""
    url = stack.base.replace("http://", "ws://") + "/v1/ws"
    async with ws(stack.base) as bystander, connect(url) as flooder:
        await bystander.next()
        await flooder.recv()
        sent = 0
        with pytest.raises(ConnectionClosed):
            for _ in range(20_000):
                await flooder.send("ping " * 10)
                sent += 1
                if sent % 100 == 0:
                    await asyncio.sleep(0)  # let the server read and react
            while True:
                await asyncio.wait_for(flooder.recv(), 10)
        assert flooder.close_code == CLOSE_POLICY
        assert sent >= BURST
        await _on_time(stack, bystander, watcher)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"category": "a\x00b"}, "category"),
        ({"category": ",".join(f"c{i}" for i in range(1000))}, "category"),
        ({"region": "<script>"}, "region"),
        ({"edition": "en,\u202eer"}, "edition"),
        ({"max_urgency": "9" * 5000}, "max_urgency"),
        ({"max_urgency": "NaN"}, "max_urgency"),
        ({"last_event_id": "../../etc/passwd"}, "last_event_id"),
        ({"last_event_id": "1" * 400 + "-0"}, "last_event_id"),
    ],
)
async def test_hostile_stream_parameters(stack: Stack, params: dict[str, str], field: str) -> None:
    """Hostile filters and resume ids get a 400 naming the parameter on SSE, and close code
    4400 on WebSocket; neither leaves a client attached."""
    r = await stack.http.get("/v1/stream", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field
    async with ws(stack.base, params) as w:
        with pytest.raises(ConnectionClosed):
            await w.next(10)
        assert w.conn.close_code == 4400
    assert stack.api.app.state.hub.client_count == 0

"""Limits on every connection before the app sees it (ticker/connlimits.py), over real
sockets: head size, header count, request target, head deadline, per-address and
process-wide caps; on the fast lane's protocol and on uvicorn's own (the lane off)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson
import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tests.support.helpers import sse, wait_for, ws
from tests.support.stack import Api
from ticker.config import Settings
from ticker.serve.connlimits import ConnLimits, LimitedHttp
from ticker.serve.fastlane import HttpProtocol
from ticker.serve.server import TickerServer, server_config

PATHS = ["lane", "plain"]  # the fast lane's protocol, and uvicorn's (TICKER_FAST_PATHS=0)


@contextlib.asynccontextmanager
async def serving(settings: Settings, path: str, **changes: Any) -> AsyncIterator[Api]:
    """The API on a real socket, its HTTP protocol the lane's or uvicorn's own."""
    api = Api(replace(settings, **changes))
    if path == "plain":
        config = server_config(api.app, api.settings, log_level="warning", http="httptools")
        api.server = TickerServer(config, api.app)
    protocol = api.server.config.http
    assert isinstance(protocol, type) and issubclass(protocol, LimitedHttp)
    assert issubclass(protocol, HttpProtocol) == (path == "lane")
    assert issubclass(protocol, HttpToolsProtocol)
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


def limits_of(api: Api) -> ConnLimits:
    protocol = api.server.config.http
    assert isinstance(protocol, type) and issubclass(protocol, LimitedHttp)
    return protocol.limits


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Read one whole response (the server closes after it): status, headers, JSON body."""
    raw = await asyncio.wait_for(reader.read(), 15)  # to EOF: the connection must close
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, orjson.loads(body)


async def refused_with(
    port: int, data: bytes, status: int, code: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    got, headers, body = await answer(reader)
    assert got == status, (got, body)
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert body["error"]["code"] == code
    writer.close()
    return reader, writer


@pytest.mark.parametrize("path", PATHS)
async def test_an_endless_header_is_cut_at_the_head_limit(settings: Settings, path: str) -> None:
    """A header that never ends is answered 431 with a JSON body and closed once the head
    passes TICKER_MAX_HEAD_BYTES, however much more is sent."""
    async with serving(settings, path, max_head_bytes=4096) as api:
        reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        with contextlib.suppress(ConnectionError):
            for _ in range(64):  # up to 1 MiB, in 16 KiB writes
                writer.write(b"a" * 16384)
                await writer.drain()
                if reader.at_eof() or len(getattr(reader, "_buffer", b"")):  # answered
                    break
        got, headers, body = await answer(reader)
        assert (got, body["error"]["code"]) == (431, "head_too_large")
        assert headers["connection"] == "close"
        writer.close()
        # A head under the limit is served as before.
        reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 200")
        writer.close()


@pytest.mark.parametrize("path", PATHS)
async def test_a_large_head_in_one_write_is_refused(settings: Settings, path: str) -> None:
    """A complete head over the limit, arriving in one read, is refused with 431 too."""
    async with serving(settings, path, max_head_bytes=4096) as api:
        big = b"X-A: " + b"a" * 6000 + b"\r\n"
        head = b"GET /v1/stream HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n"
        await refused_with(api.port, head, 431, "head_too_large")


@pytest.mark.parametrize("path", PATHS)
async def test_too_many_header_lines_are_refused(settings: Settings, path: str) -> None:
    """More than TICKER_MAX_HEADERS header lines get a 431."""
    async with serving(settings, path, max_headers=20) as api:
        lines = b"".join(b"X-%d: 1\r\n" % i for i in range(21))
        await refused_with(
            api.port,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n",
            431,
            "head_too_large",
        )
        ok = b"".join(b"X-%d: 1\r\n" % i for i in range(18))
        reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + ok + b"\r\n")
        assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 200")
        writer.close()


@pytest.mark.parametrize("path", PATHS)
async def test_a_long_request_target_is_refused(settings: Settings, path: str) -> None:
    """A request target over TICKER_MAX_REQUEST_LINE bytes gets a 414, on the stream path too."""
    async with serving(settings, path, max_request_line=1024) as api:
        target = b"/v1/stream?edition=en&x=" + b"a" * 2000
        await refused_with(
            api.port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"
        )


@pytest.mark.parametrize("path", PATHS)
async def test_a_head_that_never_completes_gets_a_408(settings: Settings, path: str) -> None:
    """A head still incomplete after TICKER_HEAD_TIMEOUT_SECONDS (a byte now and then, or
    nothing at all) is answered 408 and closed."""
    async with serving(settings, path, head_timeout_seconds=0.5) as api:
        await refused_with(api.port, b"GET /v1/stream HTTP/1.1\r\nHost: x\r\n", 408, "head_timeout")
        await refused_with(api.port, b"", 408, "head_timeout")
        # A kept-alive connection: the deadline runs again from the next request's first byte.
        reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert first.startswith(b"HTTP/1.1 200")
        length = int(first.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        writer.write(b"GET /healthz HTTP/1.1\r\nHo")
        got, _, body = await answer(reader)
        assert (got, body["error"]["code"]) == (408, "head_timeout")
        writer.close()


@pytest.mark.parametrize("path", PATHS)
async def test_idle_connections_and_streams_count_against_the_address_cap(
    settings: Settings, path: str
) -> None:
    """Idle connections, a head half sent and open streams all count toward
    TICKER_MAX_CONNECTIONS_PER_IP for a peer that is not a trusted proxy; the next gets a
    429, and a closed one frees its place (a stream's too, once it ends)."""
    # 127.0.0.1 is not a trusted proxy here, so the peer address itself is counted.
    async with serving(
        settings, path, max_connections_per_ip=4, forwarded_allow_ips="10.255.255.1"
    ) as api:
        limits = limits_of(api)
        idle = await asyncio.open_connection("127.0.0.1", api.port)
        half = await asyncio.open_connection("127.0.0.1", api.port)
        half[1].write(b"GET /healthz HTTP/1.1\r\nHo")
        async with sse(api.base) as stream, ws(api.base) as sock:
            assert (await stream.next(10)).type == "snapshot"
            assert (await sock.next(10)).type == "snapshot"
            await wait_for(lambda: limits.by_address.get("127.0.0.1") == 4, 5, what="4 counted")
            await refused_with(api.port, b"", 429, "too_many_connections")
        await wait_for(lambda: limits.by_address.get("127.0.0.1") == 2, 10, what="streams freed")
        for _, writer in (idle, half):
            writer.close()
        await wait_for(lambda: "127.0.0.1" not in limits.by_address, 10, what="all freed")
        assert limits.open == 0


@pytest.mark.parametrize("path", PATHS)
async def test_the_process_wide_cap_answers_503(settings: Settings, path: str) -> None:
    """Past TICKER_MAX_OPEN_CONNECTIONS connections of any kind, the next is answered 503."""
    async with serving(settings, path, max_open_connections=3) as api:
        limits = limits_of(api)
        held = [await asyncio.open_connection("127.0.0.1", api.port) for _ in range(3)]
        await wait_for(lambda: limits.open == 3, 5, what="3 connections counted")
        _, _ = await refused_with(api.port, b"GET /healthz HTTP/1.1\r\n\r\n", 503, "server_full")
        held.pop()[1].close()
        await wait_for(lambda: limits.open == 2, 5, what="a place to free")
        reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 200")
        for _, w in [*held, (reader, writer)]:
            w.close()

"""Test clients over real sockets: SSE (httpx streaming) and WebSocket, and the one
wait helper (``wait_for`` in the event loop, ``wait_until`` blocking)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from ticker.client.sseparse import SSEMessage, SSEParser


class _Poll:
    """One wait, shared by ``wait_for`` and ``wait_until``: the deadline, the last
    error a predicate raised (among those that mean "not yet"), and the verdict."""

    def __init__(self, timeout: float, what: str) -> None:
        self.timeout, self.what = timeout, what
        self.deadline = time.monotonic() + timeout
        self.last: BaseException | None = None

    def holds(self, result: object) -> bool:
        """Whether the condition holds; raise once the time is up."""
        if result:
            return True
        if time.monotonic() > self.deadline:
            last = f" (last error: {self.last!r})" if self.last is not None else ""
            raise AssertionError(f"timed out after {self.timeout}s waiting for {self.what}{last}")
        return False


async def wait_for(
    predicate: Callable[[], Awaitable[bool]] | Callable[[], bool],
    timeout: float = 5.0,
    interval: float = 0.02,
    what: str = "condition",
    errors: tuple[type[BaseException], ...] = (),
) -> None:
    """Poll until the predicate (sync or async) holds; fail with `what` after the
    timeout. An exception among ``errors`` counts as not yet."""
    poll = _Poll(timeout, what)
    while True:
        try:
            result = predicate()
            if asyncio.iscoroutine(result):
                result = await result
        except errors as exc:
            result, poll.last = False, exc
        if poll.holds(result):
            return
        await asyncio.sleep(interval)


def wait_until(
    predicate: Callable[[], bool],
    timeout: float = 5.0,
    interval: float = 0.05,
    what: str = "condition",
    errors: tuple[type[BaseException], ...] = (Exception,),
) -> None:
    """``wait_for`` blocking, for setup outside the event loop (a process or a Redis
    topology coming up, where any error means not up yet)."""
    poll = _Poll(timeout, what)
    while True:
        try:
            result = predicate()
        except errors as exc:
            result, poll.last = False, exc
        if poll.holds(result):
            return
        time.sleep(interval)


@dataclass
class Received:
    id: str | None
    type: str
    data: dict[str, Any]


class _Stream:
    """Shared by the SSE and WebSocket test clients."""

    async def next(self, timeout: float = 5.0) -> Received:
        raise NotImplementedError

    async def until(self, pred: Callable[[Received], bool], timeout: float = 5.0) -> Received:
        """The next event that satisfies ``pred``, skipping others."""
        deadline = time.monotonic() + timeout
        while True:
            got = await self.next(max(0.01, deadline - time.monotonic()))
            if pred(got):
                return got


@dataclass
class SSEStream(_Stream):
    """An open SSE connection with its parsed events queued."""

    response: httpx.Response
    queue: asyncio.Queue[Received | None] = field(default_factory=asyncio.Queue)
    parser: SSEParser = field(default_factory=SSEParser)
    raw: bytearray = field(default_factory=bytearray)

    async def pump(self) -> None:
        try:
            async for chunk in self.response.aiter_raw():
                self.raw += chunk
                for m in self.parser.feed(chunk):
                    self.queue.put_nowait(_received(m))
        except (httpx.HTTPError, asyncio.CancelledError):
            pass
        finally:
            self.queue.put_nowait(None)

    async def next(self, timeout: float = 5.0) -> Received:
        got = await asyncio.wait_for(self.queue.get(), timeout)
        if got is None:
            raise EOFError("stream closed")
        return got

    def drain(self) -> list[Received]:
        out = []
        while not self.queue.empty():
            got = self.queue.get_nowait()
            if got is not None:
                out.append(got)
        return out


def _received(m: SSEMessage) -> Received:
    data = orjson.loads(m.data)
    assert data["type"] == m.event, "SSE event line must equal the envelope type"
    assert data["id"] == m.id, "SSE id line must equal the envelope id"
    return Received(m.id, m.event, data)


@contextlib.asynccontextmanager
async def sse(
    base: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[SSEStream]:
    async with (
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10, read=None)) as client,
        client.stream("GET", "/v1/stream", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200, response.status_code
        stream = SSEStream(response)
        task = asyncio.create_task(stream.pump())
        try:
            yield stream
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


@dataclass
class WSStream(_Stream):
    conn: ClientConnection

    async def next(self, timeout: float = 5.0) -> Received:
        text = await asyncio.wait_for(self.conn.recv(), timeout)
        data = orjson.loads(text)
        return Received(data["id"], data["type"], data)


@contextlib.asynccontextmanager
async def ws(
    base: str, params: dict[str, str] | None = None, **kwargs: Any
) -> AsyncIterator[WSStream]:
    url = base.replace("http://", "ws://") + "/v1/ws"
    if params:
        url += "?" + str(httpx.QueryParams(params))
    async with connect(url, **kwargs) as conn:
        yield WSStream(conn)


def is_item(event_type: str, item_id: str) -> Callable[[Received], bool]:
    def pred(r: Received) -> bool:
        return r.type == event_type and r.data["item"]["id"] == item_id

    return pred

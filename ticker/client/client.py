"""A Python client for the ticker stream, for push bridges and other consumers.

``TickerClient.events()`` is an async iterator over the stream's envelopes
(``snapshot``, ``item.*``, ``reset``) for a filter. It reconnects by itself
with exponential backoff and jitter and resumes from the last event id, so
within a run nothing is missed or repeated. With a cursor (``FileCursor``) the
last id also survives restarts: it is saved once the consumer has handled an
event, that is when it asks for the next one, so a crash replays at most the
event that was being handled. After a ``reset`` (the stream no longer holds
the events after the cursor) a fresh ``snapshot`` follows: reconcile with it.

    client = TickerClient("https://ticker.example", editions=["en"], cursor=FileCursor(path))
    async for event in client.events():
        handle(event)          # the cursor moves past it when the loop comes back

Errors the server will keep giving (a bad filter, a refused origin: 4xx, or
WebSocket close codes 1008/4400) raise ``StreamRefused`` instead of retrying.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from ticker.client.sseparse import SSEParser
from ticker.constants import CLOSE_BAD_REQUEST, CLOSE_ORIGIN_REFUSED
from ticker.events import parse_stream_id
from ticker.retries import backoff

__all__ = ["Cursor", "FileCursor", "MemoryCursor", "StreamEvent", "StreamRefused", "TickerClient"]

TERMINAL_CLOSE = (CLOSE_ORIGIN_REFUSED, CLOSE_BAD_REQUEST)


class StreamRefused(Exception):
    """The server refused the stream for a reason retrying will not fix."""


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One envelope: ``id`` (the stream id), ``type`` and the whole decoded ``data``."""

    id: str
    type: str
    data: dict[str, Any]

    @property
    def item(self) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.data.get("item")
        return item


class Cursor(Protocol):
    """Where the last handled event id is kept between runs."""

    def load(self) -> str | None: ...

    def save(self, last_id: str) -> None: ...


class MemoryCursor:
    def __init__(self, last_id: str | None = None) -> None:
        self.last_id = last_id

    def load(self) -> str | None:
        return self.last_id

    def save(self, last_id: str) -> None:
        self.last_id = last_id


class FileCursor:
    """The last id, plus a ``state`` dict its owner may fill, in one JSON file.

    Saved atomically (a temporary file, fsync, rename): a crash leaves the old
    cursor or the new one, never a torn file. ``state`` is saved with the id,
    so a consumer's own bookkeeping moves in step with the cursor.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.state: dict[str, Any] = {}
        self._last_id: str | None = None
        if self.path.exists():
            doc = json.loads(self.path.read_text() or "{}")
            self._last_id = doc.get("last_id")
            self.state = dict(doc.get("state") or {})

    def load(self) -> str | None:
        return self._last_id

    def save(self, last_id: str) -> None:
        self._last_id = last_id
        data = orjson.dumps({"last_id": last_id, "state": self.state})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


class TickerClient:
    def __init__(
        self,
        base_url: str,
        *,
        editions: Iterable[str] = (),
        categories: Iterable[str] = (),
        regions: Iterable[str] = (),
        max_urgency: int | None = None,
        transport: Literal["sse", "ws"] = "sse",
        cursor: Cursor | None = None,
        headers: dict[str, str] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        idle_timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.params: dict[str, str] = {}
        for name, values in (("edition", editions), ("category", categories), ("region", regions)):
            if joined := ",".join(values):
                self.params[name] = joined
        if max_urgency is not None:
            self.params["max_urgency"] = str(max_urgency)
        if transport not in ("sse", "ws"):
            raise ValueError("transport must be 'sse' or 'ws'")
        self.transport = transport
        self.cursor: Cursor = cursor or MemoryCursor()
        self.headers = dict(headers or {})
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        # Longer than the server's heartbeat: a silent connection is a dead one.
        self.idle_timeout = idle_timeout
        self.last_id: str | None = self.cursor.load()
        self.connections = 0  # successful connections so far (1 + reconnects)

    def _commit(self, event_id: str) -> None:
        self.last_id = event_id
        self.cursor.save(event_id)

    def _is_new(self, event: StreamEvent) -> bool:
        """Snapshots and resets always count; an item event only if after the last id."""
        if event.type in ("snapshot", "reset") or self.last_id is None:
            return True
        return parse_stream_id(event.id) > parse_stream_id(self.last_id)

    async def events(self) -> AsyncIterator[StreamEvent]:
        """Every event for the filter, in stream order, across reconnects."""
        failures = 0
        while True:
            try:
                async with contextlib.aclosing(self._session()) as session:
                    async for event in session:
                        failures = 0
                        if event is None:  # a heartbeat moved the position forward
                            continue
                        if not self._is_new(event):
                            continue
                        yield event
                        # The consumer is back: it handled it. A reset is no position
                        # (its snapshot is): a crash before the snapshot must reset again.
                        if event.type != "reset":
                            self._commit(event.id)
            except StreamRefused:
                raise
            except (httpx.HTTPError, WebSocketException, OSError, EOFError, ValueError):
                pass  # dropped, refused for now, or cut: back off and resume
            failures += 1
            await asyncio.sleep(backoff(failures, self.backoff_initial, self.backoff_max))

    def _session(self) -> AsyncGenerator[StreamEvent | None, None]:
        return self._sse() if self.transport == "sse" else self._ws()

    async def _sse(self) -> AsyncGenerator[StreamEvent | None, None]:
        headers = {"Accept": "text/event-stream", **self.headers}
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
        timeout = httpx.Timeout(10.0, read=self.idle_timeout)
        async with (
            httpx.AsyncClient(timeout=timeout, trust_env=False) as http,
            http.stream(
                "GET", f"{self.base_url}/v1/stream", params=self.params, headers=headers
            ) as response,
        ):
            if response.status_code != 200:
                await response.aread()
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    raise StreamRefused(f"HTTP {response.status_code}: {response.text[:300]}")
                raise EOFError(f"HTTP {response.status_code}")
            self.connections += 1
            parser = SSEParser()
            async for chunk in response.aiter_raw():
                for message in parser.feed(chunk):
                    data = orjson.loads(message.data)
                    yield StreamEvent(data["id"], data["type"], data)
                # A heartbeat's id line: every event up to it has been sent to us.
                ping = parser.last_id
                if ping and self.last_id and _after(ping, self.last_id):
                    self._commit(ping)
                    yield None
        raise EOFError("the stream ended")

    async def _ws(self) -> AsyncGenerator[StreamEvent | None, None]:
        params = dict(self.params)
        if self.last_id:
            params["last_event_id"] = self.last_id
        url = self.base_url.replace("http", "ws", 1) + "/v1/ws"
        if params:
            url += "?" + str(httpx.QueryParams(params))
        try:
            async with connect(
                url, additional_headers=self.headers, open_timeout=10, max_size=2**24
            ) as ws:
                self.connections += 1
                async for text in ws:
                    data = orjson.loads(text)
                    yield StreamEvent(data["id"], data["type"], data)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if 400 <= status < 500 and status not in (408, 429):
                raise StreamRefused(f"HTTP {status}") from None
            raise
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code in TERMINAL_CLOSE:
                raise StreamRefused(f"closed {exc.rcvd.code}: {exc.rcvd.reason}") from None
            raise
        raise EOFError("the stream ended")


def _after(a: str, b: str) -> bool:
    try:
        return parse_stream_id(a) > parse_stream_id(b)
    except ValueError:
        return False

"""A lean HTTP/2 client for many small POSTs to a few origins (the Web Push sender's).

Why not httpx: its HTTP/2 path builds a request, a response, stream objects,
locks and per-request header validation around every send; a flash to a
hundred thousand browsers is a hundred thousand tiny POSTs to one or two push
services, and that machinery cost more than the encryption. Here each
connection is an ``asyncio.Protocol`` around one ``h2`` state machine; a send
is a HEADERS and a DATA frame written in one batch with the others of the
same loop turn, and the answer is the status and the headers asked for.

- Connections are pooled per origin (at most ``connections`` each), streams
  spread over the least busy one within the server's MAX_CONCURRENT_STREAMS.
- A stream the server did not process (GOAWAY above its last stream, or
  REFUSED_STREAM) is sent again on another connection; any other failure
  (connect, reset, timeout, a closed connection) raises ``H2Error``.
- A server that does not offer h2 in ALPN raises ``NoHTTP2`` (the caller falls
  back to an HTTP/1.1 client for that origin).
- A connection unused for ``idle_seconds`` is closed, and an origin left with none
  is forgotten: an origin is a checked address, and a push service's name resolves
  to other addresses over the days, so the pool would otherwise keep every address
  it ever met, with each one's connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import H2Error as _ProtocolError
from h2.exceptions import TooManyStreamsError
from hpack import NeverIndexedHeaderTuple

__all__ = ["H2Error", "H2Pool", "NoHTTP2", "Origin"]

_CONFIG = H2Configuration(
    client_side=True,
    header_encoding=None,
    validate_outbound_headers=False,  # the caller's headers are fixed, lower-case names
    normalize_outbound_headers=False,
    validate_inbound_headers=False,
)
_REFUSED = object()
CONNECT_TIMEOUT = 10.0  # seconds to connect, shake hands and get the server's SETTINGS
_FRESH_CAPACITY = 100  # streams assumed before the server's SETTINGS arrive (RFC 9113 floor)
IDLE_SECONDS = 300.0  # a connection unused this long is closed (the next flash opens one)
CLOSED_STREAMS = 4096  # closed streams each connection remembers (h2's default: 65,536)


class _H2Connection(H2Connection):
    """h2's state machine, remembering fewer closed streams.

    h2 keeps how each of the last 65,536 closed streams ended, to treat frames still in
    flight after a reset as a stream error rather than a connection error: megabytes on
    a connection that carried a large flash (docs/benchmarks.md), kept for its life.
    Frames in flight concern the streams of the last round trip, a few hundred at most
    (the server's concurrent stream limit); a late frame for a stream forgotten anyway
    costs the connection, whose requests fail and are retried like any other failure.
    """

    MAX_CLOSED_STREAMS = CLOSED_STREAMS


class H2Error(Exception):
    """The request failed (connection, reset, timeout); it may have reached the server."""


class NoHTTP2(H2Error):
    """The origin offered no h2 in ALPN."""


class _Full(Exception):
    """The connection has no stream to spare just now."""


class _Refused(Exception):
    """The server did not process the stream: safe to send again."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where to connect, and what the server is told it is."""

    host: str  # connect here (a checked address or a name)
    port: int
    authority: str  # the :authority (Host) the request names
    server_hostname: str  # TLS SNI and the name the certificate must match


class _Stream:
    __slots__ = ("future", "headers", "status")

    def __init__(self, future: asyncio.Future[tuple[int, dict[bytes, bytes]]]) -> None:
        self.future = future
        self.status = 0
        self.headers: dict[bytes, bytes] = {}


class _Connection(asyncio.Protocol):
    def __init__(
        self, loop: asyncio.AbstractEventLoop, want: Sequence[bytes], freed: Callable[[], None]
    ) -> None:
        self.loop = loop
        self.freed = freed  # a stream ended: the pool may have room again
        self.h2 = _H2Connection(config=_CONFIG)
        self.used = loop.time()  # when a request last started or ended here
        self.want = want  # response headers worth keeping
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}
        self.usable = True  # false once closed or told GOAWAY
        self.ready = loop.create_future()  # the server's first SETTINGS came
        self._flush_soon = False
        self._window = asyncio.Event()

    # -- the pool's view
    @property
    def capacity(self) -> int:
        if not self.usable:
            return 0
        limit = self.h2.remote_settings.max_concurrent_streams if self.ready.done() else None
        return min(limit or _FRESH_CAPACITY, 2**31) - len(self.streams)

    async def request(
        self, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, dict[bytes, bytes]]:
        h2 = self.h2
        self.used = self.loop.time()
        stream_id = h2.get_next_available_stream_id()
        try:
            h2.send_headers(stream_id, headers)
        except TooManyStreamsError:
            raise _Full from None  # closed streams not yet reaped by h2; try again later
        except _ProtocolError as exc:
            raise H2Error(f"HTTP/2 protocol error: {exc!r}") from None
        stream = _Stream(self.loop.create_future())
        self.streams[stream_id] = stream
        try:
            sent = 0
            while sent < len(body):
                room = min(h2.local_flow_control_window(stream_id), h2.max_outbound_frame_size)
                if room <= 0:
                    self._write()
                    self._window.clear()
                    await self._window.wait()
                    if not self.usable and stream.future.done():
                        break
                    continue
                chunk = body[sent : sent + room]
                sent += len(chunk)
                h2.send_data(stream_id, chunk, end_stream=sent >= len(body))
            if not body:
                h2.end_stream(stream_id)
            self._write_soon()
            answer = await stream.future
            self.used = self.loop.time()
            return answer
        except asyncio.CancelledError:
            if self.streams.pop(stream_id, None) is not None and self.usable:
                with contextlib.suppress(_ProtocolError):
                    h2.reset_stream(stream_id, ErrorCodes.CANCEL)
                    self._write_soon()
            raise
        except _ProtocolError as exc:
            self.streams.pop(stream_id, None)
            if stream.future.done():  # the server reset or refused it while we sent
                return await stream.future
            raise H2Error(f"HTTP/2 protocol error: {exc!r}") from None

    def close(self) -> None:
        self.usable = False
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(_ProtocolError):
                self.h2.close_connection()
                self.transport.write(self.h2.data_to_send())
            self.transport.close()

    # -- writes: one batch per loop turn
    def _write_soon(self) -> None:
        if not self._flush_soon:
            self._flush_soon = True
            self.loop.call_soon(self._write)

    def _write(self) -> None:
        self._flush_soon = False
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not asyncio's
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() != "h2":
            self.usable = False
            transport.close()
            return
        self.h2.initiate_connection()
        self._write()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except _ProtocolError as exc:
            self._fail(H2Error(f"HTTP/2 protocol error: {exc!r}"))
            self.close()
            return
        for event in events:
            if isinstance(event, ResponseReceived):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    for name, value in event.headers:
                        if name == b":status":
                            stream.status = int(value)
                        elif name in self.want:
                            stream.headers[name] = value
            elif isinstance(event, DataReceived):
                # The body is not needed; give the window back at once.
                if event.flow_controlled_length:
                    self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded):
                stream = self.streams.pop(event.stream_id, None)
                if stream is not None and not stream.future.done():
                    stream.future.set_result((stream.status, stream.headers))
            elif isinstance(event, StreamReset):
                stream = self.streams.pop(event.stream_id, None)
                if stream is not None and not stream.future.done():
                    if event.error_code == ErrorCodes.REFUSED_STREAM:
                        stream.future.set_exception(_Refused())
                    else:
                        msg = f"stream reset by the server ({event.error_code!r})"
                        stream.future.set_exception(H2Error(msg))
            elif isinstance(event, WindowUpdated):
                self._window.set()
            elif isinstance(event, RemoteSettingsChanged):
                if not self.ready.done():
                    self.ready.set_result(None)
                self._window.set()
            elif isinstance(event, ConnectionTerminated):
                self.usable = False
                last = event.last_stream_id or 0
                for stream_id in [s for s in self.streams if s > last]:
                    stream = self.streams.pop(stream_id)
                    if not stream.future.done():
                        stream.future.set_exception(_Refused())
        if len(events) > 0:
            self.freed()
        self._write()

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        if not self.ready.done():
            self.ready.set_exception(
                NoHTTP2("the server offered no h2") if exc is None else H2Error(repr(exc))
            )
            self.ready.exception()  # retrieved: nobody may be waiting
        self._fail(H2Error(f"connection closed ({exc!r})"))
        self._window.set()
        self.freed()

    def _fail(self, error: Exception) -> None:
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            if not stream.future.done():
                stream.future.set_exception(error)


class H2Pool:
    """HTTP/2 connections per origin, at most ``connections`` each (see the module doc)."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        connections: int = 4,
        want_headers: Sequence[str] = ("retry-after",),
        user_agent: str = "",
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        ssl_context.set_alpn_protocols(["h2"])
        self.ssl = ssl_context
        self.connections = connections
        self.idle_seconds = idle_seconds
        self._next_prune = 0.0
        self.want = tuple(h.encode() for h in want_headers)
        self.user_agent = user_agent.encode()
        self._pools: dict[Origin, list[_Connection]] = {}
        self._opening: dict[Origin, asyncio.Task[_Connection]] = {}
        self._capacity = asyncio.Event()

    async def post(
        self,
        origin: Origin,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeout: float,
    ) -> tuple[int, dict[bytes, bytes]]:
        """POST and return the status and the wanted headers (lower-case byte names)."""
        if asyncio.get_running_loop().time() >= self._next_prune:
            self.prune()
        request = [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":authority", origin.authority.encode()),
            # Never indexed: a push endpoint's path is a capability, and one per subscriber
            # would only churn the HPACK table that keeps the fixed headers cheap.
            NeverIndexedHeaderTuple(b":path", path.encode()),
            *headers,
            (b"content-length", str(len(body)).encode()),
        ]
        if self.user_agent:
            request.append((b"user-agent", self.user_agent))
        try:
            async with asyncio.timeout(timeout):
                refused = 0
                while refused < 3:  # a refused stream goes again on another connection
                    conn = await self._connection(origin)
                    try:
                        return await conn.request(request, body)
                    except _Refused:
                        conn.usable = False
                        refused += 1
                    except _Full:
                        self._capacity.clear()
                        await self._capacity.wait()
                raise H2Error("the server refused the stream three times")
        except TimeoutError:
            raise H2Error(f"no answer within {timeout}s") from None
        except OSError as exc:
            raise H2Error(f"cannot connect: {exc!r}") from None

    async def _connection(self, origin: Origin) -> _Connection:
        while True:
            pool = self._pools.setdefault(origin, [])
            live = [c for c in pool if c.usable]
            if len(live) != len(pool):
                for c in pool:
                    if not c.usable and not c.streams:
                        c.close()
                pool[:] = [c for c in pool if c.usable or c.streams]
            best = max(live, key=lambda c: c.capacity, default=None)
            if best is not None and best.capacity > 0 and best.ready.done():
                return best
            if len(live) < self.connections:
                opening = self._opening.get(origin)
                if opening is None:
                    opening = asyncio.create_task(self._open(origin))
                    self._opening[origin] = opening
                    opening.add_done_callback(partial(self._opened, origin))
                await asyncio.shield(opening)  # many waiters; one connection being opened
                continue
            if best is not None and not best.ready.done():
                await asyncio.shield(best.ready)
                continue
            # Every connection is full: wait for a stream to end somewhere.
            self._capacity.clear()
            await self._capacity.wait()

    def prune(self) -> None:
        """Close the connections unused for ``idle_seconds`` and drop those already
        closed, then forget the origins left with none (being opened aside)."""
        now = asyncio.get_running_loop().time()
        self._next_prune = now + min(30.0, self.idle_seconds / 2)
        for origin, pool in list(self._pools.items()):
            keep = []
            for conn in pool:
                if conn.streams or (conn.usable and now - conn.used < self.idle_seconds):
                    keep.append(conn)
                else:
                    conn.close()
            if keep:
                pool[:] = keep
            elif origin not in self._opening:
                del self._pools[origin]

    def _opened(self, origin: Origin, _: asyncio.Task[_Connection]) -> None:
        self._opening.pop(origin, None)

    async def _open(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        conn = _Connection(loop, self.want, self._capacity.set)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await loop.create_connection(
                    lambda: conn,
                    origin.host,
                    origin.port,
                    ssl=self.ssl,
                    server_hostname=origin.server_hostname,
                )
                if not conn.usable:
                    raise NoHTTP2(f"{origin.authority} offered no h2")
                self._pools.setdefault(origin, []).append(conn)
                await conn.ready
        except TimeoutError:
            conn.close()
            msg = f"{origin.authority}: no HTTP/2 connection within {CONNECT_TIMEOUT}s"
            raise H2Error(msg) from None
        return conn

    async def aclose(self) -> None:
        for pool in self._pools.values():
            for conn in pool:
                conn.close()
        self._pools.clear()

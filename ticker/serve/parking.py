"""Parking an open stream: once a client takes direct writes, its ASGI call ends.

A caught-up client gets every event from the hub's own writes to its transport
(ticker.serve.transport), so the ASGI call that opened it only waits for the end. Waiting
kept, for hours per connection, uvicorn's protocol and request cycle, the
call's task and the suspended frames of every middleware it passed: most of a
connection's memory (docs/benchmarks.md has the figures).

``park`` hands the socket to a ``Parked`` protocol that holds the hub's client
and nothing else, and lets the ASGI call return with the response still open.
What the call held until the connection ends is released when it ends: the
endpoint's own clean-up, and any middleware's (the connection cap counts the
stream until then) through ``on_close``, found in the scope under ``PARKED``.
How the stream ends is unchanged: a client the server cuts gets the same last
bytes it got from the endpoint (``final``), then the connection closes, and is
dropped if they are not read within ``DROP_AFTER``.

Only under uvicorn (SSE with httptools, whose chunked responses allow direct
writes; WebSocket with ``WebSocketProtocol`` below), found by duck typing like
the direct writes, and only a connection whose client has sent nothing since
its request (nothing queued or half-read); elsewhere the call keeps waiting as
before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from ticker.constants import CLOSE_INVALID_DATA
from ticker.disconnect import Disconnect
from ticker.frames import DROP_AFTER, WS_MAX_SIZE, ws_frame_size
from ticker.serve.connlimits import hand_over, release_slot
from ticker.serve.guard import FastPaths
from ticker.stream.hub import Client
from ticker.stream.wsguard import MessageBudget, MessageCheck

try:  # the C version websockets ships, where it is built
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

__all__ = [
    "FAST_PATHS",
    "PARKED",
    "Parked",
    "ParkedWebSocket",
    "WebSocketProtocol",
    "adopt",
    "on_close",
    "park",
]

PARKED = "ticker.parked"  # scope key: the Parked protocol once the call has parked
FAST_PATHS = "ticker.fast_paths"  # scope key: the server's switch (ticker.serve.guard)

Release = Callable[[], None]

BAD_OPCODES = frozenset((*range(0x3, 0x8), *range(0xB, 0x10)))


def _valid_close_code(code: int) -> bool:
    """Codes a peer may send (RFC 6455 7.4)."""
    return (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) or 3000 <= code < 5000


class Parked(asyncio.Protocol):
    """A parked SSE stream's connection: its client, and what to release when it ends."""

    __slots__ = ("client", "final", "releases", "transport")

    def __init__(
        self, client: Client, transport: Any, final: Callable[[Disconnect], bytes]
    ) -> None:
        self.client = client
        self.transport = transport
        self.final = final  # the bytes that end the stream when the server cuts it
        self.releases: list[Release] | None = []

    def attached(self) -> None:
        """Called once the connection is ours."""

    def on_close(self, release: Release) -> None:
        if self.releases is None:  # already closed
            release()
        else:
            self.releases.append(release)

    def cut(self, client: Client) -> None:
        """Client.on_cut: end the stream the way the endpoint would have."""
        if self.transport.is_closing():
            return
        reason = client.closed or Disconnect.GONE
        if reason is not Disconnect.GONE and (data := self.final(reason)):
            self.transport.write(data)
        if reason is Disconnect.GONE:
            self.close()
        else:
            self.end()

    def end(self) -> None:
        self.close()

    def close(self) -> None:
        """Close after what is queued; drop the connection if that is not read in time
        (else a client that stops reading would hold it, and its releases, for good)."""
        transport = self.transport
        transport.close()
        asyncio.get_running_loop().call_later(DROP_AFTER, transport.abort)

    # asyncio.Protocol

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.cut(Disconnect.GONE)
        releases, self.releases = self.releases or [], None
        for release in releases:
            release()

    def data_received(self, data: bytes) -> None:
        pass  # an SSE client has nothing more to say

    def eof_received(self) -> bool | None:
        self.client.cut(Disconnect.GONE)
        if not self.transport.is_closing():
            self.close()
        return True  # closed by us, with a deadline

    def pause_writing(self) -> None:
        pass  # the hub cuts a client whose buffer passes its bound

    def resume_writing(self) -> None:
        pass


class ParkedWebSocket(Parked):
    """A parked WebSocket: reads the client's frames (RFC 6455) where the server's
    protocol did: answers pings and the closing handshake, pings the client every
    ``interval`` and drops it if it stays silent for another, and cuts a client
    flooding the server (ticker.stream.wsguard)."""

    __slots__ = ("budget", "closing", "heard", "inbox", "interval", "messages", "timer")

    def __init__(
        self,
        client: Client,
        transport: Any,
        final: Callable[[Disconnect], bytes],
        interval: float,
    ) -> None:
        super().__init__(client, transport, final)
        self.inbox: bytearray | None = None  # the start of a frame not wholly received
        self.budget: MessageBudget | None = None
        self.messages: MessageCheck | None = None  # fragments and UTF-8 (RFC 6455)
        self.closing = False  # our close frame is sent: waiting for the client's
        self.heard = True  # anything received since the last ping
        self.interval = interval
        self.timer: asyncio.TimerHandle | None = None

    def attached(self) -> None:
        if self.interval > 0:
            self.timer = asyncio.get_running_loop().call_later(self.interval, self._keepalive)

    def end(self) -> None:
        # The client answers our close frame, and then we close; if it never does,
        # the connection is dropped.
        self.closing = True
        asyncio.get_running_loop().call_later(DROP_AFTER, self.transport.abort)

    def _keepalive(self) -> None:
        self.timer = None
        if self.closing or self.transport.is_closing():
            return
        if not self.heard:  # the last ping went unanswered
            self._fail(Disconnect.PING_TIMEOUT)
            return
        self.heard = False
        self.transport.write(b"\x89\x00")
        self.timer = asyncio.get_running_loop().call_later(self.interval, self._keepalive)

    def _fail(self, reason: Disconnect) -> None:
        """Fail the connection with ``reason``'s close frame; the client is gone."""
        self.inbox = None
        if not self.transport.is_closing():
            if not self.closing:
                self.transport.write(reason.ws_close())
            self.close()
        self.client.cut(Disconnect.GONE)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.heard = True
        if self.inbox:
            self.inbox += data  # appended, not copied: a frame may come a byte at a time
            buf: bytes | bytearray = self.inbox
        else:
            buf = data
        pos = self._frames(buf)
        if pos < 0:  # failed, or closed
            return
        if self.inbox:
            del self.inbox[:pos]
        elif pos < len(buf):
            self.inbox = bytearray(buf[pos:])

    def _frames(self, buf: bytes | bytearray) -> int:
        """Handle the whole frames in ``buf``; where the first incomplete one starts,
        or -1 once the connection is failing or closed."""
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            opcode = b0 & 0x0F
            if not b1 & 0x80 or b0 & 0x70 or opcode in BAD_OPCODES:
                # Unmasked, an extension bit we never agreed to, or no such opcode.
                self._fail(Disconnect.PROTOCOL_ERROR)
                return -1
            if opcode >= 0x8 and (b1 & 0x7F > 125 or not b0 & 0x80):
                # Control frames are short and never fragmented.
                self._fail(Disconnect.PROTOCOL_ERROR)
                return -1
            size = ws_frame_size(buf, pos)
            if size is None:
                break
            length, head = size
            if length > WS_MAX_SIZE:
                self._fail(Disconnect.TOO_BIG)
                return -1
            end = pos + head + 4 + length
            if n < end:
                break
            if opcode >= 0x8:
                mask = buf[pos + head : pos + head + 4]
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[pos + head + 4 : end]))
                if opcode == 0x8:
                    self._close_received(payload)
                    return -1
                if opcode == 0x9 and not self.closing and self._within_budget():
                    self.transport.write(bytes((0x8A, len(payload))) + payload)
            elif not self.closing:  # text, binary, continuation: checked, dropped
                check = self.messages = self.messages or MessageCheck()
                payload = b""
                if check.needs_payload(opcode):
                    payload = apply_mask(
                        bytes(buf[pos + head + 4 : end]), buf[pos + head : pos + head + 4]
                    )
                code = check.frame(opcode, bool(b0 & 0x80), payload)
                if code is not None:
                    self._fail(
                        Disconnect.INVALID_DATA
                        if code == CLOSE_INVALID_DATA
                        else Disconnect.PROTOCOL_ERROR
                    )
                    return -1
                self._within_budget()
            pos = end
        return pos

    def _within_budget(self) -> bool:
        """Count a message or a ping (each answered with a pong) against the client's
        budget; over it, the client is cut with 1008 (reading goes on to its answer)."""
        if self.budget is None:
            self.budget = MessageBudget()
        if self.budget.take(asyncio.get_running_loop().time()):
            return True
        self.client.cut(Disconnect.FLOOD)
        return False

    def _close_received(self, payload: bytes) -> None:
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
        if len(payload) == 1 or (code is not None and not _valid_close_code(code)):
            self._fail(Disconnect.BAD_CLOSE)
            return
        self.inbox = None
        if not self.closing and not self.transport.is_closing():
            # Echo the client's code (none: an empty close frame), then close: the
            # server closes the TCP connection first (RFC 6455 7.1.1).
            self.transport.write(bytes((0x88, len(payload[:2]))) + payload[:2])
        if not self.transport.is_closing():
            self.close()
        self.client.cut(Disconnect.GONE)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol (``Config(ws=...)``), counting reads after
    the handshake request: a client that has sent anything since may have a message
    queued, reading paused or a frame half-read, and is not parked."""

    reads = -1  # the first read is the handshake request, handed over by the HTTP protocol

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        super().data_received(data)

    def send_receive_event_to_app(self) -> None:
        # uvicorn closes a text message that is not UTF-8 with 1007 too, but logs a
        # traceback for the client's mistake: check it here, quietly.
        if self.curr_msg_data_type == "text" and not _is_utf8(b"".join(self.frames)):
            self.frames = []
            invalid = Disconnect.INVALID_DATA
            self.conn.send_close(invalid.code, invalid.rule.text)
            self.handle_parser_exception()
            return
        super().send_receive_event_to_app()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        release_slot(self)  # the connection's count (ticker.serve.connlimits)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def park(scope: MutableMapping[str, Any], raw_send: Any, parked: Parked, release: Release) -> bool:
    """Take the connection behind uvicorn's ``raw_send`` from uvicorn and give it to
    ``parked``; ``release`` runs when it ends. False if it cannot be (another
    server, the fast paths off, or the connection is not in a state to hand
    over): keep waiting. An exception inside switches the fast paths off."""
    fast: FastPaths | None = scope.get(FAST_PATHS)
    if fast is None or not fast.on:
        return False
    try:
        return _park(scope, raw_send, parked, release)
    except Exception as exc:
        fast.fail("parking", exc)
        return False


def _park(scope: MutableMapping[str, Any], raw_send: Any, parked: Parked, release: Release) -> bool:
    owner = getattr(raw_send, "__self__", None)
    transport = getattr(owner, "transport", None)
    if transport is not parked.transport or not hasattr(transport, "set_protocol"):
        return False
    server_protocol = transport.get_protocol()
    connections = getattr(server_protocol, "connections", None)
    if not isinstance(connections, set) or transport.is_closing() or parked.client.closed:
        return False
    if isinstance(parked, ParkedWebSocket):
        if not _hand_over_websocket(server_protocol):
            return False
    elif owner is not None and hasattr(owner, "response_complete"):
        if not _hand_over_http(owner, server_protocol):
            return False
    else:
        return False
    adopt(parked, server_protocol, connections, release)
    scope[PARKED] = parked
    return True


def adopt(parked: Parked, server_protocol: Any, connections: set[Any], *releases: Release) -> None:
    """Give ``parked`` the connection ``server_protocol`` served; ``releases`` run when
    it ends."""
    parked.transport.set_protocol(parked)
    hand_over(server_protocol, parked)  # the connection's count goes with it
    # Not uvicorn's open connection any more: its shutdown waits for those; ours
    # cuts the hub's clients.
    connections.discard(server_protocol)
    parked.client.on_cut = parked.cut
    for release in releases:
        parked.on_close(release)
    parked.attached()


def _hand_over_http(cycle: Any, protocol: Any) -> bool:
    """uvicorn's HTTP request cycle, with nothing more read from the client (no
    pipelined request, reading not paused): the response is not its to finish."""
    flow = getattr(protocol, "flow", None)
    if getattr(flow, "read_paused", True) or getattr(protocol, "pipeline", True):
        return False
    cycle.response_complete = True
    protocol.parser = None  # the parser and the protocol hold each other
    return True


def _hand_over_websocket(protocol: Any) -> bool:
    """Our uvicorn WebSocket protocol, open, no extension, and nothing read since the
    handshake: stop its keepalive, and detach it from the transport, which it closes
    once the ASGI call returns."""
    conn = getattr(protocol, "conn", None)
    if (
        getattr(protocol, "reads", None) != 0
        or getattr(conn, "state", None) is not State.OPEN
        or getattr(conn, "extensions", True)
        or protocol.close_sent
    ):
        return False
    protocol.stop_keepalive()
    protocol.transport = _DETACHED
    return True


class _Detached:
    """What uvicorn's WebSocket protocol holds once its connection is parked."""

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return True

    def write(self, data: bytes) -> None:
        pass


_DETACHED = _Detached()


def on_close(scope: MutableMapping[str, Any], release: Release) -> None:
    """Run ``release`` when the stream's connection ends: now, unless the call parked it."""
    parked: Parked | None = scope.get(PARKED)
    if parked is None:
        release()
    else:
        parked.on_close(release)

"""Limits on every connection, before the app (or the fast lane) sees a request.

uvicorn's httptools protocol keeps a request head's bytes for as long as they come, and
waits for them for ever: a few sockets sending megabytes of one header, or hundreds
dribbling a byte a second, hold memory and connections without ever reaching the app,
its rate limits or its per-address stream cap (issue 21). ``limited`` wraps the server's
HTTP protocol class (the fast lane's, or uvicorn's own when the lane is off) so that:

* a request head is at most ``max_head_bytes`` (431), ``max_headers`` lines (431), with a
  request target of at most ``max_request_line`` bytes (414), and complete within
  ``head_timeout`` seconds of the connection (or of the first byte of a later request on
  it) (408); each answered with a JSON error body and ``Connection: close``;
* the process holds at most ``max_open`` connections of any kind (503 to the next);
* one peer address holds at most ``per_address`` connections, idle keep-alive, handshakes
  half sent and streams alike (429). A peer that is a trusted proxy
  (``TICKER_FORWARDED_ALLOW_IPS``) is not counted here: its clients are told apart only
  by their headers, and the stream cap (ticker.middleware.conncap) counts those.

A connection counts until it closes, whichever protocol holds it by then: the slot moves
with the socket to the WebSocket protocol and to a parked stream (``hand_over``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson
from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ticker.middleware.errors import error_body

__all__ = ["ConnLimits", "LimitedHttp", "Slot", "hand_over", "limited", "release_slot"]

SLOT = "ticker_slot"  # attribute of the protocol holding a counted connection
RETRY_AFTER = b"10"
LINGER = 2.0  # seconds a refused connection's input is read and dropped before it closes
# The same for one refused as it is accepted (over a cap): shorter, since a flood of
# them is what the caps are for, and each lingering one holds a file descriptor.
ACCEPT_LINGER = 0.5


@dataclass(slots=True)
class ConnLimits:
    """The limits, and this process's counts (one object per server)."""

    max_head_bytes: int = 16 * 1024
    max_headers: int = 100
    max_request_line: int = 8 * 1024
    head_timeout: float = 10.0
    max_open: int = 0  # 0: unlimited
    per_address: int = 0  # 0: unlimited
    open: int = 0
    by_address: dict[str, int] = field(default_factory=dict)
    trusted: Any = None  # uvicorn's trusted proxy hosts, once configured
    configured: bool = False

    def configure(self, config: Config) -> None:
        self.configured = True
        if config.proxy_headers:
            self.trusted = ProxyHeadersMiddleware(
                _nothing, config.forwarded_allow_ips
            ).trusted_hosts

    def admit(self, peer: str | None) -> Slot | int:
        """Count a new connection from ``peer``: its slot, or the status refusing it."""
        if self.max_open and self.open >= self.max_open:
            return 503
        address = None
        if self.per_address and peer is not None and not (self.trusted and peer in self.trusted):
            address = peer
            held = self.by_address.get(peer, 0)
            if held >= self.per_address:
                return 429
            self.by_address[peer] = held + 1
        self.open += 1
        return Slot(self, address)


class Slot:
    """One counted connection; ``release`` (once) when it closes."""

    __slots__ = ("address", "limits")

    def __init__(self, limits: ConnLimits | None, address: str | None) -> None:
        self.limits = limits
        self.address = address

    def release(self) -> None:
        limits, self.limits = self.limits, None
        if limits is None:
            return
        limits.open -= 1
        if self.address is not None:
            left = limits.by_address[self.address] - 1
            if left:
                limits.by_address[self.address] = left
            else:
                del limits.by_address[self.address]


def hand_over(old: Any, new: Any) -> None:
    """The connection ``old`` served now belongs to ``new``: its slot goes along (a
    parked stream releases it through ``on_close``, a protocol on ``connection_lost``)."""
    slot: Slot | None = getattr(old, SLOT, None)
    if slot is None or new is old:
        return
    setattr(old, SLOT, None)
    on_close = getattr(new, "on_close", None)
    if on_close is not None:
        on_close(slot.release)
        return
    setattr(new, SLOT, slot)
    # Any protocol (uvicorn's own too, when the fast paths are off) lets go of the slot
    # when its connection is lost; release_slot is idempotent for ours, which call it too.
    lost = new.connection_lost

    def connection_lost(exc: Exception | None) -> None:
        release_slot(new)
        lost(exc)

    new.connection_lost = connection_lost


def release_slot(protocol: Any) -> None:
    """Release the slot ``protocol`` holds, if any (its connection is lost)."""
    slot: Slot | None = getattr(protocol, SLOT, None)
    if slot is not None:
        setattr(protocol, SLOT, None)
        slot.release()


# The error code in each refusal's JSON body, by status.
CODES = {
    408: "head_timeout",
    414: "uri_too_long",
    429: "too_many_connections",
    431: "head_too_large",
    503: "server_full",
}


def refusal(status: int, message: str, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole HTTP/1.1 response refusing the connection, with a JSON error body."""
    phrase = HTTPStatus(status).phrase
    body = orjson.dumps(error_body(CODES[status], message))
    head = [b"HTTP/1.1 %d %s\r\n" % (status, phrase.encode())]
    for name, value in default_headers:
        head += (name, b": ", value, b"\r\n")
    head.append(
        b"content-type: application/json\r\ncontent-length: %d\r\n"
        b"cache-control: no-store\r\nx-content-type-options: nosniff\r\n" % len(body)
    )
    if status in (429, 503):
        head.append(b"retry-after: " + RETRY_AFTER + b"\r\n")
    head.append(b"connection: close\r\n\r\n")
    return b"".join(head) + body


class LimitedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with ``ConnLimits`` (see the module docstring)."""

    limits: ConnLimits
    ticker_slot: Slot | None = None
    in_head = True  # the bytes arriving belong to a request head
    head_bytes = 0
    header_count = 0
    refused = False
    head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limits = self.limits
        if not limits.configured:
            limits.configure(self.config)
        admitted = limits.admit(self.client[0] if self.client else None)
        if isinstance(admitted, int):
            message = (
                f"at most {limits.per_address} open connections per client address"
                if admitted == 429
                else "the server holds all the connections it can; retry"
            )
            self._refuse(admitted, message, ACCEPT_LINGER)
            return
        self.ticker_slot = admitted
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        release_slot(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.in_head:
            self.head_bytes += len(data)
        super().data_received(data)
        transport = self.transport
        if transport.get_protocol() is not self:  # upgraded, or parked by the fast lane
            self._disarm()
            hand_over(self, transport.get_protocol())
            return
        if self.in_head and not self.refused and self.head_bytes > self.limits.max_head_bytes:
            self._refuse(431, f"request head larger than {self.limits.max_head_bytes} bytes")

    # Parser callbacks (httptools)

    def on_message_begin(self) -> None:
        if self.refused:
            return
        self.in_head = True
        self.header_count = 0
        if self.head_timer is None:  # a later request on a kept-alive connection
            self._arm()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if self.refused:
            return
        if len(self.url) + len(url) > self.limits.max_request_line:
            self._refuse(414, f"request target longer than {self.limits.max_request_line} bytes")
            return
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.refused:
            return
        self.header_count += 1
        if self.header_count > self.limits.max_headers:
            self._refuse(431, f"more than {self.limits.max_headers} header fields")
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self.refused:
            return
        self._disarm()
        self.in_head = False
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self.limits.max_head_bytes:  # a head that came in one large read
            self._refuse(431, f"request head larger than {self.limits.max_head_bytes} bytes")
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self.refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.refused:
            return
        super().on_message_complete()
        self.in_head, self.head_bytes = True, 0  # what follows is the next request's head

    # The head deadline

    def _arm(self) -> None:
        timeout = self.limits.head_timeout
        if timeout > 0:
            self.head_timer = self.loop.call_later(timeout, self._head_late)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_late(self) -> None:
        self.head_timer = None
        if self.refused or self.transport.is_closing() or self.transport.get_protocol() is not self:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head stalled behind a response still being written: the
            # connection ends after that response.
            self.cycle.keep_alive = False
            return
        self._refuse(408, f"request head not received within {self.limits.head_timeout:g} s")

    def _refuse(self, status: int, message: str, linger: float = LINGER) -> None:
        self.refused = True
        self._disarm()
        transport = self.transport
        if transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            transport.close()  # a response is being written (a stream, say): no room
            return
        transport.write(refusal(status, message, self.server_state.default_headers))
        # Closing with unread input would reset the connection, and the client could lose
        # the answer: end our side, drop what still comes, and close a moment later.
        if transport.can_write_eof():
            transport.write_eof()
        self.loop.call_later(linger, transport.close)


def limited(protocol: type[HttpToolsProtocol], limits: ConnLimits) -> type[HttpToolsProtocol]:
    """``protocol`` (uvicorn's httptools protocol or a subclass, such as the fast lane's)
    with ``limits`` on every connection it serves."""
    return type(protocol.__name__, (LimitedHttp, protocol), {"limits": limits})


async def _nothing(scope: Any, receive: Any, send: Any) -> None:
    pass

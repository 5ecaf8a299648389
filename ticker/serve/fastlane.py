"""The fast lane: uvicorn's HTTP protocol opens the common stream itself.

Opening a stream through ASGI costs several times Nchan's CPU per connect
(docs/benchmarks.md has the figures): uvicorn builds a scope and a request cycle
and starts a task, the request passes four middleware layers and the endpoint,
and a WebSocket handshake is parsed a second time by the websockets library.
All that for a connection parked (ticker.serve.parking) as soon as its snapshot
is out.

``HttpProtocol`` answers such a request in the parser's callback, in one step
and one write: the checks the stream gate's middleware makes (origin policy,
connection cap, trusted proxy headers), the same response head, the snapshot,
and the parked connection. It takes only what it answers exactly as the ASGI
path would (tests/test_fastlane.py compares the bytes): one whole request with
nothing after it in the same read; GET /v1/stream, or a plain WebSocket
handshake on /v1/ws; HTTP/1.1 keep-alive, no body, no subprotocol, no header
the checks read given twice; no last event id; an origin the policy admits; an
address under its cap; the hub ready and not shutting down. Anything else (a
refusal to answer, a resume that reads Redis) takes the ASGI path, unchanged.

The lane knows the gate's middleware by type: a gate with another layer, or
without one of these, turns it off, so a layer added later is never skipped.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from websockets.exceptions import InvalidHeader
from websockets.headers import parse_connection, parse_upgrade
from websockets.http11 import MAX_LINE_LENGTH, MAX_NUM_HEADERS
from websockets.utils import accept_key

from ticker import constants
from ticker.disconnect import Disconnect
from ticker.events import Event
from ticker.exceptions import ClientError
from ticker.filters import Filter
from ticker.frames import chunk
from ticker.logs import RequestContext, new_request_id, request_id
from ticker.middleware.conncap import ConnectionCap
from ticker.middleware.cors import OriginPolicyMiddleware
from ticker.middleware.secheaders import SecurityHeaders, missing_headers
from ticker.serve.guard import FastPaths
from ticker.serve.parking import Parked, ParkedWebSocket, WebSocketProtocol, adopt
from ticker.stream.gate import StreamEndpoints
from ticker.stream.hub import Hub
from ticker.stream.opening import (
    SSE_HEADERS,
    Opening,
    final_bytes,
    final_frame,
    opens_at_once,
    sse_first,
    stream_request,
)
from ticker.stream.session import open_fresh

__all__ = ["HttpProtocol", "StreamLane", "lane_protocol"]

SSE_PATH, WS_PATH = constants.SSE_PATH.encode(), constants.WS_PATH.encode()

# The request headers the lane reads; given twice, the request takes the ASGI path.
READ = frozenset(
    (
        b"origin",
        b"host",
        b"connection",
        b"upgrade",
        b"last-event-id",
        b"x-request-id",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"sec-websocket-key",
        b"sec-websocket-version",
    )
)
# Headers that make a request more than the lane answers.
DECLINE = frozenset((b"content-length", b"transfer-encoding", b"expect", b"sec-websocket-protocol"))
# The websockets library's limits on a handshake request (its own, which it reads
# from WEBSOCKETS_MAX_NUM_HEADERS and WEBSOCKETS_MAX_LINE_LENGTH); past them it refuses it.
MAX_HEADERS, MAX_LINE = MAX_NUM_HEADERS, MAX_LINE_LENGTH
_HEAD_END = b"\r\n\r\n"
_PRINTABLE = re.compile(rb"[\x20-\x7e]*")
_LAYERS = [RequestContext, SecurityHeaders, OriginPolicyMiddleware, ConnectionCap]
accept_log = logging.getLogger("uvicorn.error")  # where uvicorn logs an accepted WebSocket


@dataclass(slots=True)
class Admitted:
    """A request the lane takes, and what its checks found."""

    hub: Hub
    settings: Any
    filter: Filter
    client: Any  # (host, port) after trusted proxy headers, or None
    scheme: str
    headers: dict[bytes, bytes]
    query: bytes

    @property
    def ip(self) -> str:
        return str(self.client[0]) if self.client else "unknown"


class StreamLane:
    """What the lane checks and serves with: the stream gate's middleware, and the
    app's lifespan state (its hub, store, settings and metrics)."""

    def __init__(self, gate: Any, fast: FastPaths | None = None) -> None:
        self.gate = gate
        self.fast = FastPaths(True) if fast is None else fast
        layers: list[Any] = []
        layer = gate
        while layer is not None and not isinstance(layer, StreamEndpoints):
            layers.append(layer)
            layer = getattr(layer, "app", None)
        # The gate's layers, in the order the lane mirrors them (response headers).
        self.enabled = self.fast.on and layer is not None and [type(x) for x in layers] == _LAYERS
        self.policy: OriginPolicyMiddleware = layers[2] if self.enabled else None  # type: ignore[assignment]
        self.cap: ConnectionCap = layers[3] if self.enabled else None  # type: ignore[assignment]
        if self.enabled and not {SSE_PATH.decode(), WS_PATH.decode()} <= set(self.cap.paths):
            self.enabled = False
        self.covered = {
            path: self.enabled and self.policy.covers(path.decode()) for path in (SSE_PATH, WS_PATH)
        }
        self.proxy: ProxyHeadersMiddleware | None = None
        self.configured = False

    def configure(self, config: Config) -> None:
        """The server's settings the ASGI path gets from uvicorn's own wrappers."""
        self.configured = True
        if config.proxy_headers:
            self.proxy = ProxyHeadersMiddleware(_nothing, config.forwarded_allow_ips)
        # Between uvicorn and the gate, only the proxy headers the lane applies (not,
        # say, uvicorn's message log at trace level).
        app = config.loaded_app
        while isinstance(app, ProxyHeadersMiddleware):
            app = app.app
        if (
            getattr(app, "streams", None) is not self.gate
            or config.root_path
            or config.limit_concurrency is not None
            or config.ws_protocol_class is not WebSocketProtocol
            or config.ws_per_message_deflate
        ):
            self.enabled = False

    def open_sse(self, p: HttpProtocol) -> bool:
        """Open GET /v1/stream on ``p``'s connection and park it; False to decline."""
        req = self._admit(p, SSE_PATH, "http")
        if req is None:
            return False
        origin = req.headers.get(b"origin")
        # The endpoint's headers, then what the gate's middleware adds, in its order.
        response = list(SSE_HEADERS)
        if origin is not None and self.covered[SSE_PATH]:
            response += self.policy.cors_headers(origin.decode("latin-1"))
        response += missing_headers({name for name, _ in response}, req.scheme == "https")
        rid = new_request_id(req.headers.get(b"x-request-id", b""))
        response.append((b"x-request-id", rid.encode()))
        head = _head(
            b"HTTP/1.1 200 OK\r\n",
            [*p.server_state.default_headers, *response],
            b"transfer-encoding: chunked\r\n\r\n",
        )

        retry_ms = req.settings.sse_retry_ms
        opened = self._attach(p, req, "sse", partial(final_bytes, retry_ms))
        if opened is None:
            return False
        parked, snap = opened
        parked.client.go_direct(p.transport, "sse_chunk")
        p.transport.write(head + chunk(sse_first(retry_ms, (snap,))))
        return True

    def open_ws(self, p: HttpProtocol) -> bool:
        """Complete the WebSocket handshake on ``p``'s connection and park it; False
        to decline (uvicorn's WebSocket protocol then takes the request)."""
        req = self._admit(p, WS_PATH, "websocket")
        if req is None:
            return False
        headers = req.headers
        key = headers.get(b"sec-websocket-key")
        if headers.get(b"sec-websocket-version") != b"13" or key is None or not _valid_key(key):
            return False
        if not _upgrades_to_websocket(headers):
            return False
        accept = accept_key(key.decode("latin-1")).encode()
        head = _head(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n" % accept,
            p.server_state.default_headers,
            b"\r\n",
        )

        interval = req.settings.ws_ping_seconds
        opened = self._attach(p, req, "ws", final_frame, interval=interval)
        if opened is None:
            return False
        parked, snap = opened
        parked.client.go_direct(p.transport, "ws_frame")
        p.transport.write(head + snap.ws_frame)
        if accept_log.isEnabledFor(logging.INFO):
            _log_accepted(req)
        return True

    def _admit(self, p: HttpProtocol, path: bytes, kind: str) -> Admitted | None:
        """The checks before a stream opens: None where the ASGI path must answer."""
        if not self.configured:
            self.configure(p.config)
        state = p.app_state
        hub: Hub | None = state.get("hub")
        if not (self.enabled and self.fast.on) or not opens_at_once(hub):
            return None
        if p.cycle is not None and not p.cycle.response_complete:
            return None  # an earlier request on this connection is still being answered
        parser = p.parser
        if parser.get_method() != b"GET" or parser.get_http_version() != "1.1":
            return None
        if not parser.should_keep_alive():
            return None
        raw = p.url
        # Origin-form, ASCII, no fragment: as the websockets library requires.
        if not raw.startswith(b"/") or b"#" in raw or not raw.isascii() or len(raw) > MAX_LINE:
            return None
        try:
            url = httptools.parse_url(raw)
        except httptools.HttpParserInvalidURLError:
            return None
        if url.path != path or len(p.headers) > MAX_HEADERS:
            return None
        headers: dict[bytes, bytes] = {}
        for name, value in p.headers:
            if name in READ:
                if name in headers:
                    return None
                headers[name] = value
            elif name in DECLINE or len(name) + len(value) > MAX_LINE:
                return None
        settings = state["settings"]
        query = url.query or b""
        given = headers.get(b"last-event-id") if kind == "http" else None
        try:
            f, last_id = stream_request(
                query, settings.editions, None if given is None else given.decode("latin-1")
            )
        except ClientError:
            return None  # the endpoint answers it
        if last_id is not None:
            return None  # a resume: it may read Redis

        client: Any = p.client
        scheme: str = p.scheme or "http"
        if self.proxy is not None and (
            b"x-forwarded-for" in headers or b"x-forwarded-proto" in headers
        ):
            scope: dict[str, Any] = {
                "type": kind,
                "client": client,
                "scheme": scheme,
                "headers": p.headers,
            }
            _run(self.proxy(scope, None, None))  # type: ignore[arg-type]
            client, scheme = scope["client"], scope["scheme"]
        origin = headers.get(b"origin")
        if origin is not None and self.covered[path]:
            if not _PRINTABLE.fullmatch(origin):
                return None
            host = headers.get(b"host", b"").decode("latin-1")
            if not self.policy.admits(origin.decode("latin-1"), host):
                return None
        return Admitted(hub, settings, f, client, scheme, headers, query)

    def _attach(
        self,
        p: HttpProtocol,
        req: Admitted,
        kind: str,
        final: Callable[[Disconnect], bytes],
        *,
        interval: float | None = None,
    ) -> tuple[Parked, Event] | None:
        """Count the connection, attach its client and park it; with its snapshot.
        None at the cap."""
        cap, hub, ip = self.cap, req.hub, req.ip
        if not cap.take(ip):
            return None  # the ASGI path refuses it, and counts the refusal
        opening = None
        try:
            opening = Opening(hub, p.app_state.get("metrics"), kind, req.filter)
            client, snap = open_fresh(
                hub, req.filter, transport=kind, limit=req.settings.client_queue_max
            )
        except BaseException:
            cap.release(ip)
            if opening is not None:
                opening.close()  # counted as closed, with no client
            raise
        opening.client = client
        parked = (
            Parked(client, p.transport, final)
            if interval is None
            else ParkedWebSocket(client, p.transport, final, interval)
        )
        adopt(parked, p, p.connections, opening.release(), partial(cap.release, ip))
        p.lane_took = True
        return parked, snap


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, letting ``lane`` open streams (``lane_protocol``)."""

    lane: StreamLane
    whole = False  # the last read was one request's head, with nothing after it
    deferred = False  # a GET /v1/stream waiting for the end of its message
    lane_took = False  # the connection is parked: this protocol is done

    def data_received(self, data: bytes) -> None:
        # A read that holds a whole GET request's head and nothing more.
        self.whole = data.startswith(b"GET ") and data.find(_HEAD_END) == len(data) - 4
        super().data_received(data)
        if self.lane_took:
            self.parser = None  # type: ignore[assignment]  # they hold each other

    def on_headers_complete(self) -> None:
        if (
            self.whole
            and self.lane.enabled
            and self.url.startswith(SSE_PATH)
            and not self.parser.should_upgrade()
            and not any(name in DECLINE for name, _ in self.headers)
        ):
            # No body follows: the lane decides once the message is complete.
            self.deferred = True
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self.deferred:
            self.deferred = False
            if self._lane_opens(self.lane.open_sse):
                return
            super().on_headers_complete()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        if self.whole and self.lane.enabled and self._lane_opens(self.lane.open_ws):
            return
        super().handle_websocket_upgrade()

    def _lane_opens(self, open_stream: Callable[[HttpProtocol], bool]) -> bool:
        """Whether the lane opened the stream. An exception inside it (say, an
        attribute uvicorn renamed) switches the fast paths off, and the request
        takes the ASGI path; one the lane had already parked is dropped instead
        (the client reconnects), since it is no longer uvicorn's to answer."""
        try:
            return open_stream(self)
        except Exception as exc:
            self.lane.enabled = False
            self.lane.fast.fail("the fast lane", exc)
            if self.lane_took:
                self.transport.abort()
            return self.lane_took


def lane_protocol(gate: Any, fast: FastPaths | None = None) -> type[HttpProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, with the lane for ``gate``
    (the app's stream gate, ticker.stream.gate) under the switch ``fast``."""
    return type("HttpProtocol", (HttpProtocol,), {"lane": StreamLane(gate, fast)})


def _head(first: bytes, headers: Iterable[tuple[bytes, bytes]], end: bytes) -> bytes:
    """A response head as uvicorn writes it: the status line (and any fixed lines),
    the server's default headers and the response's, then ``end``."""
    head = [first]
    for name, value in headers:
        head += (name, b": ", value, b"\r\n")
    head.append(end)
    return b"".join(head)


def _valid_key(key: bytes) -> bool:
    """Sec-WebSocket-Key: 16 bytes in base64 (RFC 6455 4.2.1), as websockets checks it."""
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def _upgrades_to_websocket(headers: dict[bytes, bytes]) -> bool:
    """Connection and Upgrade as the websockets library reads them."""
    try:
        connection = parse_connection(headers.get(b"connection", b"").decode("latin-1"))
        upgrade = parse_upgrade(headers.get(b"upgrade", b"").decode("latin-1"))
    except InvalidHeader:
        return False
    return any(v.lower() == "upgrade" for v in connection) and [u.lower() for u in upgrade] == [
        "websocket"
    ]


def _log_accepted(req: Admitted) -> None:
    """The line uvicorn logs for an accepted WebSocket, with the request id."""
    client, query = req.client, req.query
    path = WS_PATH.decode() + ("?" + query.decode("ascii") if query else "")
    token = request_id.set(new_request_id(req.headers.get(b"x-request-id", b"")))
    try:
        accept_log.info(
            '%s - "WebSocket %s" [accepted]', f"{client[0]}:{client[1]}" if client else "", path
        )
    finally:
        request_id.reset(token)


async def _nothing(scope: Any, receive: Any, send: Any) -> None:
    pass


def _run(step: Awaitable[None]) -> None:
    """Run a coroutine that never suspends (uvicorn's proxy headers middleware over
    ``_nothing``) to its end, here and now."""
    try:
        step.send(None)  # type: ignore[attr-defined]
    except StopIteration:
        return
    raise RuntimeError("the step suspended")

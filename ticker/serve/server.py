"""Serving the app with uvicorn: one process per core, sharing the port."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import socket
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from ticker.config import Settings
from ticker.disconnect import Disconnect
from ticker.frames import DROP_AFTER, WS_MAX_SIZE
from ticker.serve.connlimits import ConnLimits, limited
from ticker.serve.fastlane import lane_protocol
from ticker.serve.guard import FastPaths, fast_paths
from ticker.serve.parking import FAST_PATHS, WebSocketProtocol
from ticker.stream.gate import is_stream

__all__ = ["TickerServer", "TransportTap", "bind", "server_config", "tune_gc"]

log = logging.getLogger("ticker.serve.server")


class TickerServer(uvicorn.Server):
    """uvicorn, plus: on shutdown, tell streaming clients first.

    uvicorn waits for open connections before the lifespan ends, and a stream
    never ends by itself; so, once the listening sockets are closed, the hub's
    clients are cut (SSE ends with a retry hint, WebSocket closes with 1012),
    and any client that still arrives is cut as soon as it attaches.
    """

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self.ticker_app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Stop accepting first, so clients told to reconnect reach another process.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        hub = getattr(self.ticker_app.state, "hub", None)
        if hub is not None:
            log.info("shutting down: closing %d streaming clients", hub.client_count)
            hub.close_all(Disconnect.SHUTDOWN)
            # Parked streams (ticker.serve.parking) are not uvicorn's to wait for: give
            # them the grace to read their last bytes (a WebSocket answers 1012).
            # One grace for this wait and uvicorn's own (deploy/k8s counts on it).
            loop = asyncio.get_running_loop()
            grace = self.config.timeout_graceful_shutdown
            started = loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    hub.emptied.wait(), DROP_AFTER + 1 if grace is None else grace
                )
            if grace is not None:
                spent = int(loop.time() - started)
                self.config.timeout_graceful_shutdown = max(0, grace - spent)
        await super().shutdown(sockets)


class TransportTap:
    """Outermost ASGI wrapper: keeps uvicorn's own ``send`` in the scope, so the
    streaming endpoints can reach the transport for direct writes and parking
    (while the fast paths are on), and sends streams down their shorter path
    (ticker.stream.gate)."""

    def __init__(self, app: ASGIApp, fast: FastPaths | None = None) -> None:
        self.app = app
        self.fast = FastPaths(True) if fast is None else fast
        state = getattr(app, "state", None)
        self.streams: ASGIApp | None = getattr(state, "streams", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast.on:
            scope["ticker.raw_send"] = send
            scope[FAST_PATHS] = self.fast
        if self.streams is not None and is_stream(scope):
            scope["app"] = self.app
            await self.streams(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def server_config(app: Starlette, settings: Settings, **overrides: Any) -> uvicorn.Config:
    fast = fast_paths(settings.fast_paths)
    options: dict[str, Any] = {
        "lifespan": "on",
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        # httptools (uvicorn[standard]), with the fast lane for opening streams
        # (ticker.serve.fastlane) while the fast paths are on.
        "http": lane_protocol(getattr(app.state, "streams", None), fast)
        if fast.on
        else "httptools",
        # websockets-sansio, counting reads (ticker.serve.parking)
        "ws": WebSocketProtocol if fast.on else "websockets-sansio",
        "ws_ping_interval": settings.ws_ping_seconds,
        "ws_ping_timeout": settings.ws_ping_seconds,
        "ws_max_size": WS_MAX_SIZE,
        # No permessage-deflate: events are small and encoded once for every
        # client; compressing per connection costs a zlib state per client and
        # CPU per send (the soak showed the memory: scripts/soak.py --only ws).
        "ws_per_message_deflate": False,
        "proxy_headers": True,
        "timeout_graceful_shutdown": 10,
        "log_level": settings.log_level,
        "access_log": False,
    }
    if settings.forwarded_allow_ips:
        options["forwarded_allow_ips"] = settings.forwarded_allow_ips
    options.update(overrides)
    options["http"] = limited_http(options["http"], settings)
    return uvicorn.Config(TransportTap(app, fast), **options)


def limited_http(http: Any, settings: Settings) -> Any:
    """The HTTP protocol class with the limits on every connection (ticker.serve.connlimits),
    whichever class serves (the fast lane's, or uvicorn's httptools protocol)."""
    if isinstance(http, str):
        if http != "httptools":
            return http  # h11: its own head size limit (h11_max_incomplete_event_size)
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        http = HttpToolsProtocol
    limits = ConnLimits(
        max_head_bytes=settings.max_head_bytes,
        max_headers=settings.max_headers,
        max_request_line=settings.max_request_line,
        head_timeout=settings.head_timeout_seconds,
        max_open=settings.max_open_connections,
        per_address=settings.max_connections_per_ip,
    )
    return limited(http, limits)


def bind(host: str, port: int, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    """A listening socket; with SO_REUSEPORT several processes share one port.

    ``listen=False``: bound only; uvicorn listens once the app has started. A
    restarted process under ``--workers N`` must not take its share of the
    port's connections (the kernel spreads them over every listening socket)
    while it is still importing and starting: they would wait in its backlog
    instead of going to the processes that serve.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a process holding many connections.

    Each open stream keeps a few dozen long-lived objects (protocol, tasks,
    client); with CPython's default thresholds the collector rescans them over
    and over while thousands of clients connect. Freezing what startup built and
    collecting the youngest generation every 50,000 allocations instead of 700
    makes connecting many clients much cheaper (docs/benchmarks.md has the figures).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)

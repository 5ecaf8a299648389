"""Per-IP caps on open streams (SSE and WebSocket together), counted in this process.

Each API process counts its own connections, so with N processes (or nodes) behind a load
balancer one address may hold up to N times the cap in all; the cap is about one client
exhausting one process, not a global quota. The address is the ASGI client address, which
uvicorn rewrites from X-Forwarded-For only for proxies in TICKER_FORWARDED_ALLOW_IPS.
"""

from __future__ import annotations

from functools import partial

import orjson
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from ticker.constants import SSE_PATH, WS_PATH
from ticker.disconnect import Disconnect
from ticker.middleware.errors import error_body
from ticker.serve.parking import PARKED, on_close

__all__ = ["STREAM_PATHS", "ConnectionCap", "client_ip", "connection_cap_middleware"]

STREAM_PATHS = (SSE_PATH, WS_PATH)
RETRY_AFTER = "10"  # seconds; a client at its cap has streams open already


def client_ip(scope: Scope) -> str:
    """The caller's address as the server sees it (after trusted proxy headers)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _refusal(limit: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = orjson.dumps(
        error_body(
            "too_many_connections",
            f"at most {limit} open streams per client address; close one and retry",
        )
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", RETRY_AFTER.encode()),
    ]
    return headers, body


class ConnectionCap:
    """ASGI middleware: over ``limit`` open streams from one address, SSE gets a 429 JSON
    answer and a WebSocket handshake is refused with the same 429 (or, on servers without
    the denial-response extension, accepted and closed with 1008)."""

    def __init__(self, app: ASGIApp, limit: int, paths: tuple[str, ...] = STREAM_PATHS) -> None:
        self.app = app
        self.limit = limit
        self.paths = paths
        self.open: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.limit <= 0
            or scope["type"] not in ("http", "websocket")
            or scope["path"] not in self.paths
        ):
            await self.app(scope, receive, send)
            return
        ip = client_ip(scope)
        if not self.take(ip):
            metrics = (scope.get("state") or {}).get("metrics")
            if metrics is not None:
                metrics.refused.labels("sse" if scope["type"] == "http" else "ws").inc()
            await self._refuse(scope, receive, send)
            return
        parked = False
        try:
            await self.app(scope, receive, send)
            parked = PARKED in scope
        finally:
            if parked:  # still open: it counts until its connection ends
                on_close(scope, partial(self.release, ip))
            else:
                self.release(ip)

    def take(self, ip: str) -> bool:
        """Count one more stream from ``ip``; False (nothing counted) at its cap."""
        held = self.open.get(ip, 0)
        if self.limit > 0 and held >= self.limit:
            return False
        self.open[ip] = held + 1
        return True

    def release(self, ip: str) -> None:
        left = self.open[ip] - 1
        if left:
            self.open[ip] = left
        else:
            del self.open[ip]

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers, body = _refusal(self.limit)
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 429, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if (await receive())["type"] != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            start = {"type": "websocket.http.response.start", "status": 429, "headers": headers}
            await send(start)
            await send({"type": "websocket.http.response.body", "body": body})
            return
        await send({"type": "websocket.accept"})
        await send(Disconnect.TOO_MANY.ws_close_message())


def connection_cap_middleware(limit: int) -> Middleware:
    """Starlette ``Middleware`` entry for ``Starlette(middleware=[...])``."""
    return Middleware(ConnectionCap, limit=limit)

"""Cross-origin policy for the public API: CORS on HTTP, an Origin check on the WebSocket handshake.

TICKER_ALLOWED_ORIGINS is ``*`` (any site may embed the ticker) or a comma list of origins such as
``https://news.example,https://*.partner.example``; a ``*.`` host matches subdomains only.
Requests without an Origin header (servers, curl, push bridges) and same-origin requests (the
service's own pages) are never refused: the policy is about which web pages may use the API.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

import orjson
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticker.disconnect import Disconnect
from ticker.exceptions import ConfigError
from ticker.middleware.errors import error_body

__all__ = [
    "ANY_ORIGIN",
    "COVERED_PATHS",
    "OriginPolicyMiddleware",
    "cors_middleware",
    "normalise_origin",
    "origin_allowed",
    "parse_allowed_origins",
]

ANY_ORIGIN = "*"
# Path prefixes the policy guards; everything else (pages, health, metrics) passes untouched.
COVERED_PATHS: tuple[str, ...] = ("/v1/stream", "/v1/items", "/v1/ws", "/v1/feeds", "/v1/push")
ALLOW_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID"
EXPOSE_HEADERS = "Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"
PREFLIGHT_MAX_AGE = "600"
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_EXPOSE = EXPOSE_HEADERS.encode()
_VARY_ORIGIN = (b"vary", b"Origin")


def normalise_origin(origin: str) -> str | None:
    """Return ``scheme://host[:port]`` lower-cased without a default port, or None if malformed."""
    origin = origin.strip()
    if origin == "null":
        return "null"
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal: urlsplit strips the brackets
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def parse_allowed_origins(value: str | Iterable[str]) -> tuple[str, ...]:
    """Parse TICKER_ALLOWED_ORIGINS (a comma string or a list) into normalised entries."""
    entries = value.split(",") if isinstance(value, str) else list(value)
    result: list[str] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        if entry == ANY_ORIGIN:
            return (ANY_ORIGIN,)
        wildcard = "://*." in entry
        normal = normalise_origin(entry.replace("://*.", "://", 1) if wildcard else entry)
        if normal is None or normal == "null":
            raise ConfigError(f"TICKER_ALLOWED_ORIGINS: not an origin: {entry!r}")
        if wildcard:
            scheme, rest = normal.split("://", 1)
            normal = f"{scheme}://*.{rest}"
        result.append(normal)
    return tuple(result)


def origin_allowed(origin: str | None, allowlist: Sequence[str]) -> bool:
    """True when a browser page from ``origin`` may use the API under ``allowlist``."""
    if not origin:
        return False
    if ANY_ORIGIN in allowlist:
        return True
    normal = normalise_origin(origin)
    if normal is None or normal == "null":
        return False
    scheme, _, hostport = normal.partition("://")
    for entry in allowlist:
        if entry == normal:
            return True
        entry_scheme, _, entry_hostport = entry.partition("://")
        if entry_hostport.startswith("*.") and entry_scheme == scheme:
            suffix = entry_hostport[1:]  # ".example.com[:port]"
            host, port = _split_port(hostport)
            suffix_host, suffix_port = _split_port(suffix)
            if port == suffix_port and host.endswith(suffix_host):
                return True
    return False


def _split_port(hostport: str) -> tuple[str, str]:
    if hostport.endswith("]"):  # bare IPv6 literal
        return hostport, ""
    host, sep, port = hostport.rpartition(":")
    return (host, port) if sep and port.isdigit() else (hostport, "")


def _same_origin(origin: str, host: str) -> bool:
    # Host against the origin's host:port; the scheme is ignored because TLS often ends at a
    # proxy, and a browser never lets a page forge either header.
    normal = normalise_origin(origin)
    host = host.strip().lower()
    if normal is None or normal == "null" or not host:
        return False
    scheme, _, hostport = normal.partition("://")
    default = _DEFAULT_PORTS.get(scheme)
    if default is not None and host.endswith(f":{default}"):
        host = host[: -len(f":{default}")]
    return hostport == host


def _error_body(origin: str) -> bytes:
    message = f"origin {origin!r} is not in TICKER_ALLOWED_ORIGINS"
    return orjson.dumps(error_body("origin_not_allowed", message))


class OriginPolicyMiddleware:
    """ASGI middleware applying the origin allowlist to the API paths in ``paths``."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_origins: str | Iterable[str] = ANY_ORIGIN,
        paths: Sequence[str] = COVERED_PATHS,
    ) -> None:
        self.app = app
        self.allowlist = parse_allowed_origins(allowed_origins)
        self.paths = tuple(paths)

    def covers(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.paths)

    def admits(self, origin: str, host: str) -> bool:
        """A request from a page of ``origin`` to ``host``: in the allowlist, or same-origin."""
        return origin_allowed(origin, self.allowlist) or _same_origin(origin, host)

    def cors_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        """The CORS headers of an admitted request's response."""
        if self.allowlist == (ANY_ORIGIN,):
            headers = [(b"access-control-allow-origin", b"*")]
        else:
            headers = [(b"access-control-allow-origin", origin.encode("latin-1")), _VARY_ORIGIN]
        headers.append((b"access-control-expose-headers", _EXPOSE))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.covers(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = self.admits(origin, headers.get("host", ""))
        if scope["type"] == "websocket":
            if allowed:
                await self.app(scope, receive, send)
            else:
                await self._refuse_websocket(receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin, allowed, send)
            return
        if not allowed:
            await self._send(send, 403, _error_body(origin), b"application/json")
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._add_cors_headers(MutableHeaders(scope=message), origin)
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _add_cors_headers(self, headers: MutableHeaders, origin: str) -> None:
        for name, value in self.cors_headers(origin):
            if name == b"vary":
                headers.add_vary_header(value.decode())
            else:
                headers[name.decode()] = value.decode("latin-1")

    async def _preflight(self, origin: str, allowed: bool, send: Send) -> None:
        if not allowed:
            await self._send(send, 403, _error_body(origin), b"application/json")
            return
        headers = MutableHeaders()
        self._add_cors_headers(headers, origin)
        headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        await send({"type": "http.response.start", "status": 204, "headers": headers.raw})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _send(send: Send, status: int, body: bytes, content_type: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"vary", b"Origin"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _refuse_websocket(receive: Receive, send: Send) -> None:
        # Accepted, then closed with the named code and a reason, so the client learns why
        # (a refused handshake only shows it a bare failure).
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        await send(Disconnect.ORIGIN_REFUSED.ws_close_message())


def cors_middleware(allowed_origins: str | Iterable[str] = ANY_ORIGIN) -> Middleware:
    """Starlette ``Middleware`` entry for ``Starlette(middleware=[...])``."""
    return Middleware(OriginPolicyMiddleware, allowed_origins=allowed_origins)

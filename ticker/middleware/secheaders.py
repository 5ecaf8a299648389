"""Security headers on every HTTP response.

Pages set their own strict Content-Security-Policy (ticker.pages); every other response
(JSON, the event stream, metrics, static files) gets a policy that allows nothing at all,
since none of them is meant to be rendered as a document. Headers a route already set are
kept. HSTS is sent only when the request came over TLS (directly, or as reported by a
trusted proxy), since a browser ignores it otherwise.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "API_CSP",
    "SECURITY_HEADERS",
    "SecurityHeaders",
    "missing_headers",
    "security_headers_middleware",
]

API_CSP = "default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": API_CSP,
}
HSTS = "max-age=31536000; includeSubDomains"
# Encoded once: every stream's connect passes here.
_ENCODED = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
_HSTS = HSTS.encode()


def missing_headers(present: set[bytes], tls: bool) -> list[tuple[bytes, bytes]]:
    """The security headers a response with headers named ``present`` lacks."""
    headers = [(n, v) for n, v in _ENCODED if n not in present]
    if tls and b"strict-transport-security" not in present:
        headers.append((b"strict-transport-security", _HSTS))
    return headers


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` where a route has not set them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers += missing_headers({name.lower() for name, _ in headers}, tls)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def security_headers_middleware() -> Middleware:
    """Starlette ``Middleware`` entry for ``Starlette(middleware=[...])``."""
    return Middleware(SecurityHeaders)

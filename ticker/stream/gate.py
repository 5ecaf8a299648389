"""A shorter ASGI path for the two streaming endpoints.

A stream stays open for hours, and every ASGI layer it passed through keeps a
suspended coroutine frame (and its send wrapper) alive for as long. Starlette's
error and exception middleware, router, route and request wrappers were a large
share of a connection's memory (docs/benchmarks.md has the figures). GET (and HEAD)
/v1/stream and /v1/ws therefore go through the app's own middleware (request id,
security headers, origin policy, connection cap), built from the same list as
the app's, straight to their endpoint; the app's exception handlers answer
errors raised before the response starts. Everything else goes to the app.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from ticker.constants import SSE_PATH, WS_PATH
from ticker.stream.sse import stream_endpoint
from ticker.stream.ws import ws_endpoint

__all__ = ["is_stream", "stream_gate"]

Handler = Callable[[Request, Exception], Any]


def is_stream(scope: Scope) -> bool:
    """Every request that opens a stream (HEAD too: it holds the response open),
    so the gate's connection cap counts them all."""
    if scope["type"] == "websocket":
        return bool(scope["path"] == WS_PATH)
    return (
        scope["type"] == "http" and scope["path"] == SSE_PATH and scope["method"] in ("GET", "HEAD")
    )


def stream_gate(
    middleware: Sequence[Middleware], handlers: dict[type[Exception], Handler]
) -> ASGIApp:
    """The streaming endpoints behind ``middleware`` (outermost first), no router."""
    app: ASGIApp = StreamEndpoints(handlers)
    for cls, args, kwargs in reversed(middleware):
        app = cls(app, *args, **kwargs)
    return app


class StreamEndpoints:
    """/v1/stream and /v1/ws, answering errors before the response with ``handlers``."""

    def __init__(self, handlers: dict[type[Exception], Handler]) -> None:
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # ws_endpoint answers its own errors with close codes; anything else
            # escapes to the server, which refuses the handshake (or closes with
            # 1011) and logs it.
            await ws_endpoint(WebSocket(scope, receive, send))
            return
        started = False

        async def send_started(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        request = Request(scope, receive, send)
        try:
            response = await stream_endpoint(request)
            await response(scope, receive, send_started)
        except Exception as exc:
            if started:
                raise
            answer: Response = await self._handler(exc)(request, exc)
            await answer(scope, receive, send)

    def _handler(self, exc: Exception) -> Handler:
        for cls in type(exc).__mro__:
            if cls in self.handlers:
                return self.handlers[cls]
        raise exc

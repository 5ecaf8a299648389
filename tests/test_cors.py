"""Origin policy: the pure allowlist match and the middleware on HTTP and WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.stack import running_stack
from ticker.config import Settings
from ticker.constants import CLOSE_ORIGIN_REFUSED
from ticker.exceptions import ConfigError
from ticker.middleware.cors import (
    OriginPolicyMiddleware,
    cors_middleware,
    normalise_origin,
    origin_allowed,
    parse_allowed_origins,
)

SITES = parse_allowed_origins(
    "https://news.example, https://*.partner.example,http://localhost:8080"
)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://news.example", True),
        ("https://NEWS.example:443", True),
        ("https://news.example/", True),
        ("http://news.example", False),
        ("https://news.example:8443", False),
        ("https://evil.news.example", False),
        ("https://news.example.evil", False),
        ("https://a.partner.example", True),
        ("https://a.b.partner.example", True),
        ("https://partner.example", False),
        ("https://apartner.example", False),
        ("http://localhost:8080", True),
        ("http://localhost", False),
        ("null", False),
        ("", False),
        (None, False),
        ("not an origin", False),
    ],
)
def test_origin_allowed_matches_the_allowlist(origin: str | None, allowed: bool) -> None:
    """Exact origins match after normalisation; *. entries match subdomains only."""
    assert origin_allowed(origin, SITES) is allowed


def test_star_allows_any_origin() -> None:
    """With "*" every page origin may use the API, even an opaque one."""
    star = parse_allowed_origins("*")
    assert star == ("*",)
    assert origin_allowed("https://anything.example", star)
    assert origin_allowed("null", star)


def test_parse_rejects_what_is_not_an_origin() -> None:
    """A path, a bare host or "null" in TICKER_ALLOWED_ORIGINS is a configuration error."""
    for bad in ("https://news.example/page", "news.example", "null"):
        with pytest.raises(ConfigError, match="not an origin"):
            parse_allowed_origins(bad)
    assert parse_allowed_origins(" https://A.example:443 ,, ") == ("https://a.example",)
    assert normalise_origin("http://[::1]:8000") == "http://[::1]:8000"


def _app(allowed: str) -> Starlette:
    async def items(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True}, status_code=202 if request.method == "POST" else 200)

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/v1/items", items, methods=["GET", "POST"]),
            Route("/v1/stream", items),
            Route("/healthz", health),
        ],
        middleware=[cors_middleware(allowed)],
    )


def _client(allowed: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=_app(allowed))
    return httpx.AsyncClient(transport=transport, base_url="http://ticker.test")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with _client("https://news.example") as c:
        yield c


async def test_allowed_origin_gets_cors_headers(client: httpx.AsyncClient) -> None:
    """An allowed page gets its origin echoed back, with Vary: Origin for caches."""
    r = await client.get("/v1/stream", headers={"Origin": "https://news.example"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://news.example"
    assert "Origin" in r.headers["vary"]
    assert "access-control-allow-credentials" not in r.headers


async def test_refused_origin_gets_a_json_403(client: httpx.AsyncClient) -> None:
    """A page not on the list is refused before the endpoint runs, with a named error."""
    r = await client.post("/v1/items", json={}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in r.headers


async def test_requests_without_origin_and_same_origin_pass(client: httpx.AsyncClient) -> None:
    """Servers (no Origin) and the service's own pages (same origin) are never refused."""
    assert (await client.post("/v1/items", json={})).status_code == 202
    r = await client.post("/v1/items", json={}, headers={"Origin": "http://ticker.test"})
    assert r.status_code == 202


async def test_preflight(client: httpx.AsyncClient) -> None:
    """A preflight from an allowed origin lists the API's methods and headers; others get 403."""
    asks = {
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization",
    }
    r = await client.options("/v1/items/abc", headers={"Origin": "https://news.example", **asks})
    assert r.status_code == 204
    assert "PATCH" in r.headers["access-control-allow-methods"]
    assert "DELETE" in r.headers["access-control-allow-methods"]
    assert "Authorization" in r.headers["access-control-allow-headers"]
    assert "Idempotency-Key" in r.headers["access-control-allow-headers"]
    refused = await client.options("/v1/items", headers={"Origin": "https://evil.example", **asks})
    assert refused.status_code == 403


async def test_uncovered_paths_are_untouched(client: httpx.AsyncClient) -> None:
    """Pages and health checks are outside the policy: no CORS headers, no refusal."""
    r = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


async def test_star_sends_a_wildcard() -> None:
    """With "*" the response allows any origin without echoing it."""
    async with _client("*") as client:
        r = await client.get("/v1/stream", headers={"Origin": "https://whoever.example"})
    assert r.headers["access-control-allow-origin"] == "*"


async def _handshake(origin: str | None) -> list[Message]:
    """Run one WebSocket handshake through the middleware; return what it sent."""

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "hello"})

    headers = [(b"host", b"ticker.test")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    scope: dict[str, Any] = {"type": "websocket", "path": "/v1/ws", "headers": headers}
    incoming = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    app = OriginPolicyMiddleware(endpoint, allowed_origins=("https://news.example",))
    await app(scope, receive, send)
    return sent


async def test_websocket_origin_policy() -> None:
    """A WebSocket from an allowed origin, the same origin or no browser is served; others: 1008."""
    for origin in ("https://news.example", "http://ticker.test", None):
        assert [m["type"] for m in await _handshake(origin)] == [
            "websocket.accept",
            "websocket.send",
        ]
    refused = await _handshake("https://evil.example")
    assert [m["type"] for m in refused] == ["websocket.accept", "websocket.close"]
    assert refused[1]["code"] == CLOSE_ORIGIN_REFUSED


async def test_service_applies_the_allowlist(settings: Settings) -> None:
    """The running service refuses other sites on the API (403, WebSocket 1008), not on pages."""
    limited = replace(settings, allowed_origins=("https://news.example",))
    async with running_stack(limited) as stack:
        evil = {"Origin": "https://evil.example"}
        r = await stack.http.post(
            "/v1/items", json={"headline": "x", "edition": "en"}, headers=evil
        )
        assert r.status_code == 403
        assert (await stack.http.get("/embed.js", headers=evil)).status_code == 200
        async with stack.http.stream(
            "GET", "/v1/stream", headers={"Origin": "https://news.example"}
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["access-control-allow-origin"] == "https://news.example"
        url = stack.base.replace("http://", "ws://") + "/v1/ws"
        async with connect(url, origin="https://news.example") as ok:  # type: ignore[arg-type]
            assert orjson.loads(await asyncio.wait_for(ok.recv(), 5))["type"] == "snapshot"
        async with connect(url, origin="https://evil.example") as refused:  # type: ignore[arg-type]
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(refused.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_ORIGIN_REFUSED

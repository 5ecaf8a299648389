"""Origin policy: the pure allowlist match and the middleware on HTTP and WebSocket."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from ticker.cors import (
    CLOSE_ORIGIN_REFUSED,
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
        with pytest.raises(ValueError, match="not an origin"):
            parse_allowed_origins(bad)
    assert parse_allowed_origins(" https://A.example:443 ,, ") == ("https://a.example",)
    assert normalise_origin("http://[::1]:8000") == "http://[::1]:8000"


def _app(allowed: str) -> Starlette:
    async def items(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True}, status_code=202 if request.method == "POST" else 200)

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    return Starlette(
        routes=[
            Route("/v1/items", items, methods=["GET", "POST"]),
            Route("/v1/stream", items),
            Route("/healthz", health),
            WebSocketRoute("/v1/ws", ws),
        ],
        middleware=[cors_middleware(allowed)],
    )


@pytest.fixture
def client() -> TestClient:
    return TestClient(_app("https://news.example"), base_url="http://ticker.test")


def test_allowed_origin_gets_cors_headers(client: TestClient) -> None:
    """An allowed page gets its origin echoed back, with Vary: Origin for caches."""
    r = client.get("/v1/stream", headers={"Origin": "https://news.example"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://news.example"
    assert "Origin" in r.headers["vary"]
    assert "access-control-allow-credentials" not in r.headers


def test_refused_origin_gets_a_json_403(client: TestClient) -> None:
    """A page not on the list is refused before the endpoint runs, with a named error."""
    r = client.post("/v1/items", json={}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in r.headers


def test_requests_without_origin_and_same_origin_pass(client: TestClient) -> None:
    """Servers (no Origin) and the service's own pages (same origin) are never refused."""
    assert client.post("/v1/items", json={}).status_code == 202
    r = client.post("/v1/items", json={}, headers={"Origin": "http://ticker.test"})
    assert r.status_code == 202


def test_preflight(client: TestClient) -> None:
    """A preflight from an allowed origin lists the API's methods and headers; others get 403."""
    asks = {
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization",
    }
    r = client.options("/v1/items/abc", headers={"Origin": "https://news.example", **asks})
    assert r.status_code == 204
    assert "PATCH" in r.headers["access-control-allow-methods"]
    assert "DELETE" in r.headers["access-control-allow-methods"]
    assert "Authorization" in r.headers["access-control-allow-headers"]
    assert "Idempotency-Key" in r.headers["access-control-allow-headers"]
    refused = client.options("/v1/items", headers={"Origin": "https://evil.example", **asks})
    assert refused.status_code == 403


def test_uncovered_paths_are_untouched(client: TestClient) -> None:
    """Pages and health checks are outside the policy: no CORS headers, no refusal."""
    r = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


def test_star_sends_a_wildcard() -> None:
    """With "*" the response allows any origin without echoing it."""
    client = TestClient(_app("*"))
    r = client.get("/v1/stream", headers={"Origin": "https://whoever.example"})
    assert r.headers["access-control-allow-origin"] == "*"


def test_websocket_origin_policy(client: TestClient) -> None:
    """A WebSocket from an allowed origin is served; others are closed with 1008."""
    with client.websocket_connect("/v1/ws", headers={"Origin": "https://news.example"}) as ws:
        assert ws.receive_text() == "hello"
    with client.websocket_connect("/v1/ws") as ws:  # no Origin: a server-side client
        assert ws.receive_text() == "hello"
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/v1/ws", headers={"Origin": "https://evil.example"}) as ws,
    ):
        ws.receive_text()
    assert closed.value.code == CLOSE_ORIGIN_REFUSED

"""Security: intake rate limits, per-address stream caps, security headers, secrets."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.helpers import sse, wait_for
from tests.support.stack import API_KEYS, KEYS, Stack, auth, running_stack
from ticker.config import Settings
from ticker.embedded_redis import RedisProcess
from ticker.exceptions import ConfigError
from ticker.intake.auth import KeyRing
from ticker.middleware.conncap import ConnectionCap
from ticker.middleware.secheaders import API_CSP
from ticker.pages import CONTENT_SECURITY_POLICY


async def metric(stack: Stack, name: str, **labels: str) -> float:
    """One sample's value from /metrics."""
    text = (await stack.http.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    raise AssertionError(f"no sample {name}{labels}")


def xff(ip: str) -> dict[str, str]:
    """Headers making the (trusted, local) caller appear to come from ``ip``."""
    return {"X-Forwarded-For": ip}


async def test_rate_limit_per_api_key(settings: Settings) -> None:
    """Past its limit a key gets 429 JSON with Retry-After and RateLimit headers, and nothing
    is created; other keys are unaffected."""
    async with running_stack(replace(settings, rate_limit_per_key="2/minute")) as stack:
        bodies = [{"headline": f"Limited {i}", "edition": "en"} for i in range(3)]
        first = await stack.post(bodies[0])
        second = await stack.post(bodies[1])
        assert first.status_code == second.status_code == 202
        assert first.headers["ratelimit-limit"] == "2"
        assert first.headers["ratelimit-remaining"] == "1"
        assert second.headers["ratelimit-remaining"] == "0"
        refused = await stack.post(bodies[2])
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit-remaining"] == "0"
        assert len(await stack.redis.keys(stack.keys.item("*"))) == 2
        # Corrections and retractions count too; another key has its own budget.
        item_id = first.json()["id"]
        r = await stack.http.patch(f"/v1/items/{item_id}", json={"urgency": 2}, headers=auth())
        assert r.status_code == 429
        other = await stack.post({"headline": "Other desk", "edition": "en"}, key="admin")
        assert other.status_code == 202
        # Reads are not limited.
        assert (await stack.http.get(f"/v1/items/{item_id}", headers=auth())).status_code == 200
        assert (await metric(stack, "ticker_rate_limited_total", scope="key")) == 2


async def test_rate_limit_per_address_counts_unauthenticated_writes(settings: Settings) -> None:
    """Writes from one address are capped whatever the key (even with none), while
    another address keeps its own budget."""
    cfg = replace(settings, rate_limit_per_ip="2/minute", rate_limit_per_key="")
    async with running_stack(cfg) as stack:
        body = {"headline": "From one address", "edition": "en"}
        r = await stack.http.post("/v1/items", json=body, headers=xff("203.0.113.7"))
        assert r.status_code == 401
        r = await stack.http.post("/v1/items", json=body, headers={**auth(), **xff("203.0.113.7")})
        assert r.status_code == 202
        r = await stack.http.post(
            "/v1/items", json=body, headers={**auth("admin"), **xff("203.0.113.7")}
        )
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        assert "retry-after" in r.headers
        r = await stack.http.post(
            "/v1/items",
            json={**body, "headline": "From another"},
            headers={**auth(), **xff("198.51.100.9")},
        )
        assert r.status_code == 202
        assert len(await stack.redis.keys(stack.keys.item("*"))) == 2
        # The limiter's keys live under the deployment's hash tag, named by key name only.
        limiter_keys = await stack.redis.keys("*ratelimit*")
        assert limiter_keys and all(k.startswith(b"{ticker}:ratelimit:") for k in limiter_keys)


async def test_rate_limited_intake_answers_503_when_redis_is_down() -> None:
    """With the rate limiter's store (Redis) gone, writes get a JSON 503 with Retry-After,
    never a 500."""
    redis = RedisProcess()
    redis.start()
    cfg = Settings(redis_url=redis.url, api_keys=API_KEYS, rate_limit_per_key="100/minute")
    try:
        async with running_stack(cfg) as stack:
            assert (await stack.post({"headline": "Before", "edition": "en"})).status_code == 202
            redis.close()
            r = await stack.post({"headline": "During", "edition": "en"})
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "unavailable"
            assert r.headers["retry-after"]
    finally:
        redis.close()


async def _sse_status(base: str, ip: str) -> int:
    async with (
        httpx.AsyncClient(base_url=base, timeout=10) as client,
        client.stream("GET", "/v1/stream", headers=xff(ip)) as r,
    ):
        if r.status_code != 200:
            await r.aread()
            assert r.headers["content-type"] == "application/json"
            assert r.json()["error"]["code"] == "too_many_connections"
        return r.status_code


async def test_stream_connections_are_capped_per_address(settings: Settings) -> None:
    """Over the cap an address gets 429 on SSE and a refused WebSocket handshake; other
    addresses connect, and a closed stream frees its slot."""
    async with running_stack(replace(settings, max_connections_per_ip=2)) as stack:
        ws_url = stack.base.replace("http://", "ws://") + "/v1/ws"
        async with contextlib.AsyncExitStack() as held:
            first = await held.enter_async_context(sse(stack.base, headers=xff("192.0.2.1")))
            await first.next()
            ws = await held.enter_async_context(
                connect(ws_url, additional_headers=xff("192.0.2.1"))
            )
            await ws.recv()
            assert await _sse_status(stack.base, "192.0.2.1") == 429
            with pytest.raises(InvalidStatus) as refused:
                async with connect(ws_url, additional_headers=xff("192.0.2.1")):
                    pass
            assert refused.value.response.status_code == 429
            assert await metric(stack, "ticker_connections_refused_total", transport="sse") == 1
            assert await metric(stack, "ticker_connections_refused_total", transport="ws") == 1
            async with sse(stack.base, headers=xff("192.0.2.2")) as other:
                assert (await other.next()).type == "snapshot"
            await ws.close()

            async def slot_freed() -> bool:
                return await _sse_status(stack.base, "192.0.2.1") == 200

            await wait_for(slot_freed, 10, interval=0.1, what="the closed WebSocket's slot")


async def test_head_streams_count_against_the_same_cap(settings: Settings) -> None:
    """A HEAD /v1/stream holds a stream open too: it takes a slot under the one cap."""
    async with (
        running_stack(replace(settings, max_connections_per_ip=1)) as stack,
        httpx.AsyncClient(base_url=stack.base, timeout=10) as holder,
    ):
        head = await holder.head("/v1/stream", headers=xff("192.0.2.7"))
        assert head.status_code == 200
        assert await _sse_status(stack.base, "192.0.2.7") == 429
        await holder.aclose()  # the HEAD stream's connection goes, and its slot with it

        async def slot_freed() -> bool:
            return await _sse_status(stack.base, "192.0.2.7") == 200

        await wait_for(slot_freed, 10, interval=0.1, what="the HEAD stream's slot")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/v1/items/" + "0" * 32),
        ("POST", "/v1/items"),
        ("GET", "/nowhere"),
        ("GET", "/embed.js"),
    ],
)
async def test_security_headers_on_every_response(
    settings: Settings, method: str, path: str
) -> None:
    """Every response, error or not, carries nosniff, a referrer policy, framing denial and a
    deny-all CSP (pages keep their own); HSTS only over TLS."""
    async with running_stack(settings) as stack:
        r = await stack.http.request(method, path, headers=auth(), json={})
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["content-security-policy"] == API_CSP
        assert "strict-transport-security" not in r.headers
        tls = await stack.http.request(
            method, path, headers={**auth(), "X-Forwarded-Proto": "https"}, json={}
        )
        assert tls.headers["strict-transport-security"].startswith("max-age=")


async def test_stream_and_pages_headers(settings: Settings) -> None:
    """The SSE response carries the security headers too, and pages keep their strict CSP."""
    async with running_stack(settings) as stack:
        async with sse(stack.base) as s:
            assert s.response.headers["x-content-type-options"] == "nosniff"
            assert s.response.headers["content-security-policy"] == API_CSP
        for page in ("/", "/console"):
            r = await stack.http.get(page)
            assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert r.headers["x-frame-options"] == "DENY"


async def test_keys_never_logged_on_refusals(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither a refused key (401) nor a rate-limited key (429) appears in logs or limiter
    keys; only key names do."""
    caplog.set_level(logging.DEBUG)
    async with running_stack(replace(settings, rate_limit_per_key="1/minute")) as stack:
        body = {"headline": "Logged once", "edition": "en"}
        assert (await stack.post(body)).status_code == 202
        assert (await stack.post(body)).status_code == 429
        bad = {"Authorization": "Bearer not-a-key-but-secret"}
        assert (await stack.http.post("/v1/items", json=body, headers=bad)).status_code == 401
        names = [k.decode() for k in await stack.redis.keys("*")]
    text = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert "ticker.access" in {r.name for r in caplog.records}
    for secret in (KEYS["editor"], "not-a-key-but-secret"):
        assert secret not in text
        assert not any(secret in n for n in names)
    assert any("editor" in n for n in names if "ratelimit" in n)


def test_api_keys_from_a_file(tmp_path: Path) -> None:
    """TICKER_API_KEYS_FILE supplies keys (beside TICKER_API_KEYS); errors name the variable,
    never the file's contents."""
    path = tmp_path / "keys.json"
    path.write_text(
        json.dumps([{"name": "cms", "key": "file-key-0123456789", "scopes": ["publish"]}])
    )
    env = {"TICKER_API_KEYS_FILE": str(path), "TICKER_API_KEYS": API_KEYS}
    ring = KeyRing.from_entries(Settings.from_env(env).api_key_entries())
    assert ring.authenticate("Bearer file-key-0123456789").name == "cms"
    assert ring.authenticate(f"Bearer {KEYS['editor']}").name == "editor"
    path.write_text("[{not json, file-key-0123456789")
    with pytest.raises(ConfigError) as bad:
        Settings.from_env(env).api_key_entries()
    assert "TICKER_API_KEYS_FILE" in str(bad.value) and "file-key" not in str(bad.value)
    with pytest.raises(ConfigError, match="TICKER_API_KEYS_FILE"):
        Settings.from_env({"TICKER_API_KEYS_FILE": str(tmp_path / "missing")}).api_key_entries()


def test_any_setting_from_a_file(tmp_path: Path) -> None:
    """TICKER_<NAME>_FILE reads a setting (such as a Redis URL with a password) from a file;
    the variable itself wins, and an unreadable file is a ConfigError naming the variable."""
    path = tmp_path / "redis_url"
    path.write_text("redis://:s3cret@redis.internal:6379/0\n")
    assert Settings.from_env({"TICKER_REDIS_URL_FILE": str(path)}).redis_url == (
        "redis://:s3cret@redis.internal:6379/0"
    )
    env = {"TICKER_REDIS_URL_FILE": str(path), "TICKER_REDIS_URL": "redis://other:6379/1"}
    assert Settings.from_env(env).redis_url == "redis://other:6379/1"
    with pytest.raises(ConfigError, match="TICKER_REDIS_URL_FILE") as missing:
        Settings.from_env({"TICKER_REDIS_URL_FILE": str(tmp_path / "nope")})
    assert "s3cret" not in str(missing.value)


def test_bad_rate_limits_are_a_config_error() -> None:
    """A rate limit that does not parse stops startup with the variable named."""
    with pytest.raises(ConfigError, match="TICKER_RATE_LIMIT_PER_KEY"):
        Settings.from_env({"TICKER_RATE_LIMIT_PER_KEY": "lots"})
    assert Settings.from_env({"TICKER_RATE_LIMIT_PER_IP": "0"}).rate_limit_per_ip == "0"


def test_trusted_proxies_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """TICKER_FORWARDED_ALLOW_IPS reaches uvicorn; unset, uvicorn's FORWARDED_ALLOW_IPS
    (what the deploy files set) still applies."""
    from starlette.applications import Starlette

    from ticker.serve.server import server_config

    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    assert server_config(Starlette(), Settings()).forwarded_allow_ips == "*"
    cfg = server_config(Starlette(), Settings(forwarded_allow_ips="10.0.0.0/8"))
    assert cfg.forwarded_allow_ips == "10.0.0.0/8"


async def test_cap_without_denial_extension_closes_1008() -> None:
    """On a server without the WebSocket denial-response extension, a handshake over the cap
    is accepted and closed at once with 1008, and the app is never called."""
    called: list[object] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)

    cap = ConnectionCap(app, limit=1)
    cap.open["192.0.2.9"] = 1
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/v1/ws", "client": ("192.0.2.9", 5000), "headers": []}
    await cap(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[1]["code"] == 1008 and not called
    scope["client"] = ("192.0.2.10", 5000)
    await cap(scope, receive, send)
    assert called and cap.open == {"192.0.2.9": 1}

"""Failed authentication has a budget on every route, and integer fields take integers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.stack import Stack, auth, running_stack
from tests.test_security import metric, xff
from ticker.config import Settings
from ticker.filters import Filter
from ticker.webhooks.store import WebhookStore

WRONG = {"Authorization": "Bearer not-a-key-at-all"}


async def test_wrong_keys_on_reads_are_limited_per_address(settings: Settings) -> None:
    """Past the budget of failed authentications, an address gets 429 with Retry-After on
    every route (reads, webhooks, writes, even with a right key), another address does not."""
    async with running_stack(replace(settings, rate_limit_auth_failures="3/minute")) as stack:
        me = xff("203.0.113.20")
        paths = ["/v1/items/0123456789abcdef", "/v1/webhooks", "/v1/items/x"]
        for path in paths:
            r = await stack.http.get(path, headers={**WRONG, **me})
            assert r.status_code == 401, r.text
        for path in paths:
            r = await stack.http.get(path, headers={**WRONG, **me})
            assert r.status_code == 429, r.text
            assert r.json()["error"]["code"] == "rate_limited"
            assert int(r.headers["retry-after"]) >= 1
        r = await stack.http.post(
            "/v1/items", json={"headline": "Locked out", "edition": "en"}, headers={**auth(), **me}
        )
        assert r.status_code == 429
        assert await stack.redis.keys(stack.keys.item("*")) == []
        other = {**auth("admin"), **xff("198.51.100.20")}
        assert (await stack.http.get("/v1/webhooks", headers=other)).status_code == 200
        assert await metric(stack, "ticker_rate_limited_total", scope="auth") == 4


async def test_forbidden_uses_of_a_key_are_limited_per_key_name(settings: Settings) -> None:
    """A known key refused for its scope (403) spends its name's budget, from any address;
    other keys keep theirs."""
    async with running_stack(replace(settings, rate_limit_auth_failures="2/minute")) as stack:
        for ip in ("203.0.113.30", "203.0.113.31"):
            r = await stack.http.get("/v1/webhooks", headers={**auth("editor"), **xff(ip)})
            assert r.status_code == 403, r.text
        r = await stack.http.get(
            "/v1/items/0123456789abcdef", headers={**auth("editor"), **xff("203.0.113.32")}
        )
        assert r.status_code == 429, r.text
        r = await stack.http.get("/v1/webhooks", headers={**auth("admin"), **xff("203.0.113.33")})
        assert r.status_code == 200


async def test_no_header_costs_nothing_and_right_keys_are_not_counted(stack: Stack) -> None:
    """Successful requests are not failures: many right-key reads never reach a 429 even
    with the default budget."""
    for _ in range(40):
        assert (await stack.http.get("/v1/webhooks", headers=auth("admin"))).status_code == 200


@pytest.mark.parametrize(
    ("path", "method", "body", "field"),
    [
        ("/v1/items", "POST", {"headline": "Float", "edition": "en", "urgency": 1.0}, "urgency"),
        ("/v1/items", "POST", {"headline": "Float", "edition": "en", "urgency": 2.5}, "urgency"),
        ("/v1/items", "POST", {"headline": "Bool", "edition": "en", "urgency": True}, "urgency"),
        (
            "/v1/webhooks",
            "POST",
            {"url": "https://example.com/h", "filter": {"max_urgency": 3.0}},
            "filter.max_urgency",
        ),
    ],
)
async def test_integer_fields_refuse_floats(
    stack: Stack, path: str, method: str, body: dict[str, object], field: str
) -> None:
    """An integer field given 1.0 (or 2.5, or true) gets a 422 naming it, and nothing is stored."""
    key = "admin" if path == "/v1/webhooks" else "editor"
    r = await stack.http.request(method, path, json=body, headers=auth(key))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert "integer" in r.json()["error"]["message"]
    assert await stack.redis.keys(stack.keys.item("*")) == []


async def test_integer_fields_refuse_floats_on_patch_and_rotate(stack: Stack) -> None:
    """PATCH urgency 2.0 and a secret rotation's grace_seconds 10.0 are refused naming the field."""
    r = await stack.post({"headline": "Whole numbers only", "edition": "en"})
    item_id = r.json()["id"]
    r = await stack.http.patch(f"/v1/items/{item_id}", json={"urgency": 2.0}, headers=auth())
    assert r.status_code == 422 and r.json()["error"]["field"] == "urgency", r.text
    # Stored directly: registering would resolve a name, and no event follows it.
    hook = await WebhookStore(stack.redis, stack.keys).create(
        url="https://example.com/h", filter=Filter(), enabled=True, description="", now="x"
    )
    r = await stack.http.post(
        f"/v1/webhooks/{hook.id}/rotate-secret", json={"grace_seconds": 10.0}, headers=auth("admin")
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "grace_seconds", r.text

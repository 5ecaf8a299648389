"""Intake: authentication, scopes, validation, idempotency, duplicates, re-runs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.helpers import wait_for
from tests.support.stack import KEYS, Stack, auth
from ticker.constants import Keys
from workers.ingest import ingest_item
from workers.publish import Publisher


async def assert_nothing_changed(stack: Stack) -> None:
    assert await stack.events() == []
    assert await stack.redis.keys(stack.keys.item("*")) == []


@pytest.mark.parametrize(
    ("headers", "status", "field"),
    [
        ({}, 401, "Authorization"),
        ({"Authorization": "Bearer nope"}, 401, "Authorization"),
        ({"Authorization": f"Basic {KEYS['editor']}"}, 401, "Authorization"),
        (auth("corrector"), 403, None),
    ],
)
async def test_auth_errors(
    stack: Stack, headers: dict[str, str], status: int, field: str | None
) -> None:
    """Missing or unknown keys get 401, a key without the publish scope 403; nothing changes."""
    r = await stack.http.post("/v1/items", json={"headline": "x", "edition": "en"}, headers=headers)
    assert r.status_code == status
    assert r.json()["error"]["field"] == field
    await assert_nothing_changed(stack)


async def test_edition_restricted_key(stack: Stack) -> None:
    """A key limited to one edition may post there and gets 403 naming edition elsewhere."""
    r = await stack.post({"headline": "عاجل", "edition": "ar"}, key="en-desk")
    assert r.status_code == 403 and r.json()["error"]["field"] == "edition"
    await assert_nothing_changed(stack)
    assert (await stack.post({"headline": "ok", "edition": "en"}, key="en-desk")).status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"edition": "en"}, "headline"),
        ({"headline": "x"}, "edition"),
        ({"headline": "", "edition": "en"}, "headline"),
        ({"headline": "x" * 301, "edition": "en"}, "headline"),
        ({"headline": "nul\x00byte", "edition": "en"}, "headline"),
        ({"headline": "x", "edition": "fr"}, "edition"),
        ({"headline": "x", "edition": "en", "urgency": 0}, "urgency"),
        ({"headline": "x", "edition": "en", "urgency": "1"}, "urgency"),
        ({"headline": "x", "edition": "en", "url": "javascript:alert(1)"}, "url"),
        ({"headline": "x", "edition": "en", "categories": ["Not A Slug"]}, "categories.0"),
        ({"headline": "x", "edition": "en", "colour": "red"}, "colour"),
        ({"headline": "x", "edition": "en", "expires_at": "tomorrow"}, "expires_at"),
    ],
)
async def test_validation_names_the_field(stack: Stack, body: dict[str, Any], field: str) -> None:
    """Invalid bodies get 422 with a JSON error naming the field, and change nothing."""
    r = await stack.post(body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == field
    assert error["message"]
    await assert_nothing_changed(stack)


async def test_malformed_requests(stack: Stack) -> None:
    """Wrong content type (415), bad JSON (400), oversize (413), non-object (422)."""
    h = auth()
    r = await stack.http.post("/v1/items", content=b"headline=x", headers=h)
    assert r.status_code == 415 and r.json()["error"]["field"] == "Content-Type"
    h = {**h, "Content-Type": "application/json"}
    r = await stack.http.post("/v1/items", content=b'{"headline": ', headers=h)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = await stack.http.post("/v1/items", content=b'{"headline": "\xff\xfe"}', headers=h)
    assert r.status_code == 400
    r = await stack.http.post("/v1/items", content=b"[" * 5000 + b"]" * 5000, headers=h)
    assert r.status_code == 400
    big = b'{"headline": "' + b"x" * 70_000 + b'", "edition": "en"}'
    r = await stack.http.post("/v1/items", content=big, headers=h)
    assert r.status_code == 413 and r.json()["error"]["field"] == "body"
    r = await stack.http.post("/v1/items", content=b"[1, 2]", headers=h)
    assert r.status_code == 422
    await assert_nothing_changed(stack)


async def test_accepted_item_has_status_url(stack: Stack) -> None:
    """202 answers with the id and a status URL that moves from queued to published."""
    r = await stack.post({"headline": "Status check", "edition": "en"})
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "queued"
    assert body["status_url"] == f"/v1/items/{body['id']}"
    view = await stack.wait_status(body["id"], "published")
    assert view["item"]["headline"] == "Status check"
    assert view["event_id"]


async def test_items_go_through_after_redis_forgot_the_scripts(stack: Stack) -> None:
    """The atomic steps run by their id; a Redis without them (restarted, flushed) is sent
    their source instead, and the item is still accepted and published."""
    await stack.publish("Scripts loaded")
    await stack.redis.script_flush()
    r = await stack.post({"headline": "Scripts sent again", "edition": "en"})
    assert r.status_code == 202, r.text
    await stack.wait_status(r.json()["id"], "published")


async def test_unknown_item_is_404(stack: Stack) -> None:
    """GET of an unknown item id is a JSON 404."""
    r = await stack.http.get("/v1/items/" + "0" * 32, headers=auth())
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_idempotency_key(stack: Stack) -> None:
    """The same Idempotency-Key and body gives the first answer; another body gives 422."""
    body = {"headline": "Once only", "edition": "en"}
    h = {"Idempotency-Key": "cms-42"}
    first = await stack.post(body, headers=h)
    again = await stack.post(body, headers=h)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    await stack.wait_status(first.json()["id"], "published")
    other = await stack.post({**body, "headline": "Something else"}, headers=h)
    assert other.status_code == 422
    assert other.json()["error"]["field"] == "Idempotency-Key"
    assert len(await stack.events()) == 1
    assert len(await stack.redis.keys(stack.keys.item("*"))) == 1


async def test_exact_duplicate_within_window(stack: Stack) -> None:
    """The same headline (modulo spacing and case) in the same edition is a duplicate."""
    original = await stack.publish("Quake hits  Lima")
    r = await stack.post({"headline": " quake hits lima ", "edition": "en"})
    view = await stack.wait_status(r.json()["id"], "duplicate")
    assert view["duplicate_of"] == original["id"]
    assert len(await stack.events()) == 1
    other_edition = await stack.post({"headline": "Quake hits Lima", "edition": "es"})
    await stack.wait_status(other_edition.json()["id"], "published")


async def test_force_overrides_duplicate_check_with_admin_scope(stack: Stack) -> None:
    """`force` needs the admin scope, and then publishes even a duplicate."""
    await stack.publish("Quake hits Lima")
    body = {"headline": "Quake hits Lima", "edition": "en", "force": True}
    assert (await stack.post(body)).status_code == 403
    r = await stack.post(body, key="admin")
    await stack.wait_status(r.json()["id"], "published")
    assert len(await stack.events()) == 2


async def test_job_rerun_publishes_once(stack: Stack) -> None:
    """Running the ingest job again for a published item adds no event and no message."""
    item = await stack.publish("Run me twice")
    s = stack.settings
    keys = Keys(s.redis_prefix)
    ctx = {
        "settings": s,
        "keys": keys,
        "redis": stack.redis,
        "publisher": Publisher(
            stack.redis, keys, maxlen=s.stream_maxlen, retention_seconds=s.stream_retention_seconds
        ),
    }
    async with stack.redis.pubsub() as ps:
        await ps.subscribe(keys.channel)
        assert await ingest_item(ctx, item["id"]) == "exists"
        assert await ingest_item(ctx, item["id"]) == "exists"
        await stack.redis.publish(keys.channel, b"marker")
        messages: list[bytes] = []

        async def marker_seen() -> bool:
            m = await ps.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if m is not None:
                messages.append(m["data"])
            return b"marker" in messages

        await wait_for(marker_seen, what="the marker message")
    assert messages == [b"marker"]
    assert len(await stack.events()) == 1
    view = (await stack.http.get(f"/v1/items/{item['id']}", headers=auth())).json()
    assert view["event_id"] == item["event_id"]


async def test_openapi_document_is_served_and_valid(stack: Stack) -> None:
    """/openapi.json is a valid OpenAPI 3.1 document whose item schema is the intake's."""
    from jsonschema import Draft202012Validator

    r = await stack.http.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    schema = doc["components"]["schemas"]["ItemInput"]
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["edition"]["enum"] == list(stack.settings.editions)
    assert {"/v1/items", "/v1/items/{item_id}", "/v1/stream"} <= set(doc["paths"])

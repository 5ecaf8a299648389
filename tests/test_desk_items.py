"""The items API for desks and CMSs: listing, Prefer: wait, history and closing reasons."""

from __future__ import annotations

import pytest

from tests.support.stack import Stack, auth
from ticker.exceptions import ValidationError
from ticker.intake.listing import ListQuery, matches, parse_query
from ticker.intake.prefer import parse_wait


def test_parse_wait_follows_rfc_7240() -> None:
    """The wait preference is found among others, capped at 10 s, and ignored when malformed."""
    assert parse_wait("respond-async, WAIT=3") == 3.0
    assert parse_wait("wait=60") == 10.0
    assert parse_wait("wait=soon") is None
    assert parse_wait("return=minimal") is None
    assert parse_wait(None) is None


def test_query_parsing_names_the_bad_parameter() -> None:
    """Unknown parameters, statuses, limits and cursors are refused naming the parameter."""
    editions = ("en", "ar", "es")
    for params, field in [
        ({"colour": "red"}, "colour"),
        ({"status": "live"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "bm9wZQ"}, "cursor"),
        ({"edition": "fr"}, "edition"),
        ({"since": "yesterday"}, "since"),
    ]:
        with pytest.raises(ValidationError) as err:
            parse_query(params, editions)
        assert err.value.field == field


def test_matches_filters_on_the_view() -> None:
    """Status, section, region and a case-blind headline search all have to hold."""
    view = {
        "status": "published",
        "item": {"edition": "en", "headline": "Quake hits Chile", "categories": ["world"]},
    }
    assert matches(view, ListQuery(q="quake"), None)
    assert not matches(view, ListQuery(q="flood"), None)
    assert not matches(view, ListQuery(statuses=frozenset({"held"})), None)
    assert not matches(view, ListQuery(region="europe"), None)
    assert not matches(view, ListQuery(), frozenset({"ar"}))


async def test_listing_filters_pages_newest_first(stack: Stack) -> None:
    """GET /v1/items lists newest first, filters by edition, status and text, pages by cursor."""
    ids = []
    for n in range(5):
        r = await stack.post({"headline": f"Storm number {n} reaches the coast", "edition": "en"})
        ids.append(r.json()["id"])
    r = await stack.post({"headline": "عاصفة تضرب الساحل", "edition": "ar"})
    ar_id = r.json()["id"]
    for i in ids:
        await stack.wait_status(i, "published")

    page = (await stack.http.get("/v1/items?edition=en&limit=2", headers=auth())).json()
    assert [v["id"] for v in page["items"]] == ids[::-1][:2]
    rest = (
        await stack.http.get(f"/v1/items?edition=en&cursor={page['next_cursor']}", headers=auth())
    ).json()
    assert [v["id"] for v in rest["items"]] == ids[::-1][2:]
    assert rest["next_cursor"] is None

    found = (await stack.http.get("/v1/items?q=NUMBER%203", headers=auth())).json()
    assert [v["id"] for v in found["items"]] == [ids[3]]
    ar = (await stack.http.get("/v1/items?edition=ar", headers=auth())).json()
    assert [v["id"] for v in ar["items"]] == [ar_id]
    published = (await stack.http.get("/v1/items?status=published", headers=auth())).json()
    assert ids[0] in {v["id"] for v in published["items"]}

    bad = await stack.http.get("/v1/items?status=live", headers=auth())
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "status"
    assert (await stack.http.get("/v1/items")).status_code == 401


async def test_edition_limited_key_lists_only_its_editions(stack: Stack) -> None:
    """A key limited to en sees only en items, and asking for ar is a 403 naming edition."""
    await stack.post({"headline": "Bridge reopens after repairs", "edition": "en"})
    await stack.post({"headline": "افتتاح الجسر بعد الإصلاح", "edition": "ar"})
    seen = (await stack.http.get("/v1/items", headers=auth("en-desk"))).json()["items"]
    assert {v["item"]["edition"] for v in seen} == {"en"}
    r = await stack.http.get("/v1/items?edition=ar", headers=auth("en-desk"))
    assert r.status_code == 403 and r.json()["error"]["field"] == "edition"


async def test_prefer_wait_answers_with_the_decision(stack: Stack) -> None:
    """With Prefer: wait=8, POST answers 200 published, a repeat 200 duplicate naming the
    original, PATCH the applied version and DELETE the retraction with its reason."""
    body = {"headline": "Parliament dissolved ahead of snap election", "edition": "en"}
    r = await stack.post(body, headers={"Prefer": "wait=8"})
    assert r.status_code == 200, r.text
    assert r.headers["preference-applied"] == "wait=8"
    first = r.json()
    assert first["status"] == "published"

    r = await stack.post(body, headers={"Prefer": "wait=8"})
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    assert r.json()["duplicate_of"] == first["id"]

    r = await stack.http.patch(
        f"/v1/items/{first['id']}",
        json={"headline": "Parliament dissolved; election set for June"},
        headers={**auth(), "Prefer": "wait=8"},
    )
    assert r.status_code == 200 and r.json()["published_version"] == 2
    assert r.json()["item"]["headline"] == "Parliament dissolved; election set for June"

    r = await stack.http.request(
        "DELETE",
        f"/v1/items/{first['id']}",
        json={"reason": "Premature: vote not yet held"},
        headers={**auth(), "Prefer": "wait=8"},
    )
    assert r.status_code == 200 and r.json()["status"] == "retracted"
    assert r.json()["retraction"]["reason"] == "Premature: vote not yet held"
    view = (await stack.http.get(f"/v1/items/{first['id']}", headers=auth())).json()
    assert view["retraction"]["reason"] == "Premature: vote not yet held"
    assert view["retraction"]["by"] == "editor"


async def test_embargoed_answer_and_no_wait_stays_queued(stack: Stack) -> None:
    """An embargoed item is a decision at once; without Prefer the answer stays 202 queued."""
    r = await stack.post(
        {
            "headline": "Results due at noon",
            "edition": "en",
            "embargoed_until": "2999-01-01T00:00:00Z",
        },
        headers={"Prefer": "wait=3"},
    )
    assert r.status_code == 200 and r.json()["status"] == "embargoed"
    r = await stack.post({"headline": "Another headline entirely", "edition": "en"})
    assert r.status_code == 202 and r.json()["status"] == "queued"
    assert "preference-applied" not in r.headers


async def test_history_shows_old_and_new_values(stack: Stack) -> None:
    """A correction's history entry holds each changed field's value before and after."""
    item = await stack.publish("Fire at the port is under control", urgency=4)
    r = await stack.http.patch(
        f"/v1/items/{item['id']}",
        json={"headline": "Fire at the port is out", "urgency": 5},
        headers={**auth(), "Prefer": "wait=8"},
    )
    assert r.status_code == 200
    history = (await stack.http.get(f"/v1/items/{item['id']}/history", headers=auth())).json()
    entry = next(e for e in history["history"] if e["action"] == "correction accepted")
    assert entry["changes"] == {
        "headline": {"old": "Fire at the port is under control", "new": "Fire at the port is out"},
        "urgency": {"old": 4, "new": 5},
    }
    assert entry["by"] == "editor"


async def test_end_now_expires_with_its_reason(stack: Stack) -> None:
    """Moving the expiry to now takes the item off at once; its view says it expired, and how."""
    item = await stack.publish("Roads closed by snow in the north")
    r = await stack.http.patch(
        f"/v1/items/{item['id']}",
        json={"expires_at": "2000-01-01T00:00:00Z"},
        headers=auth(),
    )
    assert r.status_code == 202
    view = await stack.wait_status(item["id"], "expired", timeout=20)
    assert view["retraction"] == {
        "kind": "expiry",
        "reason": "expired",
        "by": "system",
        "at": view["retraction"]["at"],
    }
    assert await stack.redis.zscore(stack.keys.live, item["id"]) is None

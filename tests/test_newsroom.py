"""Newsroom semantics end to end: corrections, retractions, expiry, embargo, near-duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.helpers import is_item, sse, wait_for, ws
from tests.support.stack import Stack, auth


def soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


async def test_correction_updates_every_screen_and_snapshots(stack: Stack) -> None:
    """PATCH makes version 2 with an item.updated event; snapshots show only the latest."""
    async with sse(stack.base) as s, ws(stack.base) as w:
        await s.next()
        await w.next()
        item = await stack.publish("Five killed in Jenin raid")
        r = await stack.http.patch(
            f"/v1/items/{item['id']}",
            headers=auth("corrector"),
            json={"headline": "Six killed in Jenin raid", "correction_note": "Updates death toll"},
        )
        assert r.status_code == 202, r.text
        assert r.json()["version"] == 2
        for client in (s, w):
            await client.until(is_item("item.published", item["id"]))
            upd = await client.until(is_item("item.updated", item["id"]))
            assert upd.data["item"]["headline"] == "Six killed in Jenin raid"
            assert upd.data["item"]["version"] == 2
            assert upd.data["item"]["correction_note"] == "Updates death toll"
    async with sse(stack.base) as s:
        (only,) = (await s.next()).data["items"]
    assert only["headline"] == "Six killed in Jenin raid" and only["version"] == 2
    view = await stack.wait_status(item["id"], "published")
    assert view["published_version"] == 2


async def test_retraction_removes_the_item_everywhere(stack: Stack) -> None:
    """DELETE with a reason gives item.retracted; clients drop it; snapshots exclude it."""
    async with sse(stack.base, {"edition": "en"}) as s, ws(stack.base) as w:
        await s.next()
        await w.next()
        item = await stack.publish("Minister resigns")
        r = await stack.http.request(
            "DELETE", f"/v1/items/{item['id']}", headers=auth(), json={"reason": "Not confirmed"}
        )
        assert r.status_code == 202, r.text
        for client in (s, w):
            got = await client.until(is_item("item.retracted", item["id"]))
            assert got.data["reason"] == "Not confirmed"
            assert got.data["item"]["edition"] == "en"
    await stack.wait_status(item["id"], "retracted")
    async with ws(stack.base) as w:
        assert (await w.next()).data["items"] == []
    again = await stack.http.patch(
        f"/v1/items/{item['id']}", headers=auth(), json={"headline": "Back again"}
    )
    assert again.status_code == 409


async def test_retraction_needs_a_reason_and_the_scope(stack: Stack) -> None:
    """DELETE without a reason is 422 naming it; without the retract scope 403; nothing changes."""
    item = await stack.publish("Keep me")
    url = f"/v1/items/{item['id']}"
    r = await stack.http.request("DELETE", url, headers=auth(), json={})
    assert r.status_code == 422 and r.json()["error"]["field"] == "reason"
    r = await stack.http.request("DELETE", url, headers=auth("corrector"), json={"reason": "x"})
    assert r.status_code == 403
    r = await stack.http.patch(url, headers=auth("en-desk"), json={"headline": "No scope"})
    assert r.status_code == 403
    r = await stack.http.patch(url, headers=auth(), json={"edition": "ar"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "edition"
    assert len(await stack.events()) == 1


async def test_corrections_apply_in_order_one_event_each(stack: Stack) -> None:
    """Several quick corrections each give exactly one event, in version order."""
    item = await stack.publish("Count 0")
    for n in range(1, 4):
        r = await stack.http.patch(
            f"/v1/items/{item['id']}", headers=auth(), json={"headline": f"Count {n}"}
        )
        assert r.status_code == 202
    await wait_for(lambda: _published_version(stack, item["id"]), what="version 4 applied")
    events = await stack.events()
    assert [f[b"type"] for _, f in events] == [b"item.published"] + [b"item.updated"] * 3
    async with sse(stack.base) as s:
        assert (await s.next()).data["items"][0]["headline"] == "Count 3"


async def _published_version(stack: Stack, item_id: str) -> bool:
    view = (await stack.http.get(f"/v1/items/{item_id}", headers=auth())).json()
    return bool(view["published_version"] == 4)


async def test_expiry_takes_the_item_off_the_ticker(stack: Stack) -> None:
    """At expires_at the item leaves with an item.expired event."""
    async with sse(stack.base) as s:
        await s.next()
        item = await stack.publish("Short-lived", expires_at=soon(1))
        got = await s.until(is_item("item.expired", item["id"]), timeout=10)
        assert got.data["reason"] == "expired"
    await stack.wait_status(item["id"], "expired")
    assert item["item"]["expires_at"]


async def test_default_expiry_depends_on_urgency(stack: Stack) -> None:
    """Without expires_at, an item gets the configured lifetime for its urgency."""
    item = await stack.publish("Flash", urgency=1)
    lifetime = datetime.fromisoformat(
        item["item"]["expires_at"].replace("Z", "+00:00")
    ) - datetime.fromisoformat(item["item"]["published_at"].replace("Z", "+00:00"))
    assert abs(lifetime.total_seconds() - stack.settings.expiry_seconds_by_urgency[0]) < 5


async def test_embargo_publishes_at_its_time(stack: Stack) -> None:
    """An embargoed item stays unseen until embargoed_until, then publishes."""
    async with sse(stack.base) as s:
        await s.next()
        r = await stack.post(
            {"headline": "Embargoed report", "edition": "en", "embargoed_until": soon(1.0)}
        )
        assert r.json()["status"] == "embargoed"
        item_id = r.json()["id"]
        got = await s.until(is_item("item.published", item_id), timeout=10)
    published = datetime.fromisoformat(got.data["item"]["published_at"].replace("Z", "+00:00"))
    assert published >= datetime.now(UTC) - timedelta(seconds=10)


async def test_embargo_can_be_changed_or_cancelled_before(stack: Stack) -> None:
    """Before release an embargoed item can be edited (no event) or cancelled (never shown)."""
    r = await stack.post(
        {"headline": "Cancelled report", "edition": "en", "embargoed_until": soon(60)}
    )
    cancel_id = r.json()["id"]
    r = await stack.post(
        {"headline": "Draft headline", "edition": "en", "embargoed_until": soon(60)}
    )
    edit_id = r.json()["id"]
    r = await stack.http.request(
        "DELETE", f"/v1/items/{cancel_id}", headers=auth(), json={"reason": "Story dropped"}
    )
    assert r.status_code == 202 and r.json()["status"] == "cancelled"
    # Move the embargo to now: the edited draft goes out with the new headline.
    r = await stack.http.patch(
        f"/v1/items/{edit_id}",
        headers=auth(),
        json={"headline": "Final headline", "embargoed_until": soon(-1)},
    )
    assert r.status_code == 202
    view = await stack.wait_status(edit_id, "published")
    assert view["item"]["headline"] == "Final headline" and view["item"]["version"] == 1
    assert [f[b"item"] for _, f in await stack.events()] == [edit_id.encode()]
    assert (await stack.http.get(f"/v1/items/{cancel_id}", headers=auth())).json()[
        "status"
    ] == "cancelled"


async def test_near_duplicate_is_held_back(stack: Stack) -> None:
    """A reworded headline for the same story is held; a changed number is published; an
    exact repeat (label and clitics aside) is a duplicate."""
    first = await stack.publish("BREAKING: Five killed in Jenin raid, ministry says")
    r = await stack.post({"headline": "Five killed in Jenin raid - ministry", "edition": "en"})
    view = await stack.wait_status(r.json()["id"], "held")
    assert view["duplicate_of"] == first["id"]
    await stack.publish("Six killed in Jenin raid, ministry says")
    r = await stack.post({"headline": "عاجل: مقتل خمسة في جنين", "edition": "ar"})
    await stack.wait_status(r.json()["id"], "published")
    r = await stack.post({"headline": "مقتل خمسة في جنين", "edition": "ar"})
    await stack.wait_status(r.json()["id"], "duplicate")
    assert len(await stack.events()) == 3


async def test_history_lists_who_did_what(stack: Stack) -> None:
    """The audit trail records submission, publication, correction and retraction."""
    item = await stack.publish("Audit me")
    await stack.http.patch(
        f"/v1/items/{item['id']}", headers=auth("corrector"), json={"urgency": 2}
    )

    async def applied() -> bool:
        r = await stack.http.get(f"/v1/items/{item['id']}", headers=auth())
        return bool(r.json()["published_version"] == 2)

    await wait_for(applied, what="the correction to apply")
    await stack.http.request(
        "DELETE", f"/v1/items/{item['id']}", headers=auth(), json={"reason": "Wrong"}
    )
    await stack.wait_status(item["id"], "retracted")
    history = (await stack.http.get(f"/v1/items/{item['id']}/history", headers=auth())).json()
    steps = [(h["action"], h["by"]) for h in history["history"]]
    assert steps == [
        ("submitted", "editor"),
        ("published", "worker"),
        ("correction accepted", "corrector"),
        ("applied", "worker"),
        ("retraction accepted", "editor"),
        ("applied", "worker"),
    ]

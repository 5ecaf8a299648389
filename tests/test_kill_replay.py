"""Kills purge the replay (issue 21): after a retraction, no resume (by last id, ``0-0``,
from Redis or from a process's replay cache, on SSE, WebSocket or the Python client)
returns the killed text; resumes still get every other event once, in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.helpers import Received, sse, wait_for, ws
from tests.support.receivers import Hit, receiver
from tests.support.stack import Stack, auth, running_stack
from ticker.client.client import MemoryCursor, TickerClient
from ticker.config import Settings

KILLED = "Minister named in court papers (legal kill)"
SECOND = "Sealed order on the harbour contract leaked"


@contextlib.asynccontextmanager
async def killed_stack(
    settings: Settings, source: str
) -> AsyncIterator[tuple[Stack, dict[str, str]]]:
    """A stack where X, the item K, Y, a correction of K and Z were published, then K was
    retracted; resumes are served from the replay cache (``memory``) or Redis (``redis``).
    Gives the event ids of X, K's first version and K's correction."""
    cache = 1000 if source == "memory" else 0
    async with running_stack(replace(settings, replay_cache_events=cache)) as stack:
        x = await stack.publish("Storm closes port")
        k = await stack.publish(KILLED, summary=f"{KILLED}: the details")
        await stack.publish("Markets steady", urgency=4)
        patch = {"summary": "Corrected details of the kill"}
        r = await stack.http.patch(f"/v1/items/{k['id']}", json=patch, headers=auth())
        assert r.status_code == 202, r.text
        corrected: dict[str, Any] = {}

        async def correction_out() -> bool:
            nonlocal corrected
            corrected = (await stack.http.get(f"/v1/items/{k['id']}", headers=auth())).json()
            return bool(corrected["published_version"] == 2)

        await wait_for(correction_out, 10, what="the correction")
        await stack.publish("Rail strike called off")
        r = await stack.http.delete(
            f"/v1/items/{k['id']}", params={"reason": "legal"}, headers=auth()
        )
        assert r.status_code == 202, r.text
        view = await stack.wait_status(k["id"], "retracted")
        hub = stack.api.app.state.hub
        await wait_for(lambda: hub.token == view["event_id"], 10, what="the kill in the hub")
        yield stack, {"x": x["event_id"], "k": k["event_id"], "fix": corrected["event_id"]}


async def _sse_events(stack: Stack, last_id: str, n: int) -> tuple[list[Received], bytes]:
    async with sse(stack.base, headers={"Last-Event-ID": last_id}) as s:
        got = [await s.next(10) for _ in range(n)]
        return got, bytes(s.raw)


async def _ws_events(stack: Stack, last_id: str, n: int) -> tuple[list[Received], bytes]:
    async with ws(stack.base, {"last_event_id": last_id}) as w:
        got = [await w.next(10) for _ in range(n)]
        return got, b"".join(str(r.data).encode() for r in got)


@pytest.mark.parametrize("source", ["memory", "redis"])
@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_a_resume_from_before_a_killed_item_never_returns_its_text(
    settings: Settings, source: str, transport: str
) -> None:
    """Resuming from before the killed item (or from 0-0) gives a reset and a snapshot
    without it; resuming from after its publication gives exactly the later events, in
    order, with no duplicate; nowhere does the killed text come back."""
    read = _sse_events if transport == "sse" else _ws_events
    async with killed_stack(settings, source) as (stack, ids):
        for last_id in (ids["x"], ids["k"], "0-0"):
            got, raw = await read(stack, last_id, 2)
            assert [e.type for e in got] == ["reset", "snapshot"]
            headlines = {i["headline"] for i in got[1].data["items"]}
            assert headlines == {"Storm closes port", "Markets steady", "Rail strike called off"}
            assert KILLED.encode() not in raw and b"Corrected details" not in raw
        # From the killed item's last (deleted) event, seen live: the later events, each
        # once, in order.
        got, raw = await read(stack, ids["fix"], 2)
        assert [(e.type, e.data["item"].get("headline")) for e in got] == [
            ("item.published", "Rail strike called off"),
            ("item.retracted", None),
        ]
        assert KILLED.encode() not in raw
        # Nothing in the stream, nor in the process's replay cache, holds the text any more.
        recent = stack.api.app.state.hub.recent
        assert not [e for e in recent if KILLED in str(e.data)]
        stream = await stack.events()
        assert not [f for _, f in stream if KILLED.encode() in f[b"data"]]
        assert [f[b"type"] for _, f in stream] == [b"item.published"] * 3 + [b"item.retracted"]


async def test_the_python_client_resuming_from_before_the_kill_never_sees_it(
    settings: Settings,
) -> None:
    """The Python client with a cursor from before the killed item gets a reset and a
    snapshot without it, and then live events."""
    async with killed_stack(settings, "redis") as (stack, ids):
        client = TickerClient(stack.base, cursor=MemoryCursor(ids["x"]), transport="ws")
        seen: list[Any] = []

        async def run() -> None:
            async for event in client.events():
                seen.append(event)

        task = asyncio.create_task(run())
        try:
            await wait_for(lambda: len(seen) >= 2, 10, what="reset and snapshot")
            await stack.publish("Live after the kill")
            await wait_for(lambda: len(seen) >= 3, 10, what="the live item")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert [e.type for e in seen] == ["reset", "snapshot", "item.published"]
        assert KILLED not in str([e.data for e in seen])


async def test_a_kill_purges_events_of_an_item_published_before_event_ids_were_kept(
    stack: Stack,
) -> None:
    """An item stored without its list of event ids (published by an older version) has
    its events found in the stream and deleted by the kill all the same."""
    k = await stack.publish(KILLED)
    await stack.publish("Storm closes port")
    await stack.redis.hdel(stack.keys.item(k["id"]), "event_ids")
    r = await stack.http.delete(f"/v1/items/{k['id']}", params={"reason": "legal"}, headers=auth())
    assert r.status_code == 202, r.text
    await stack.wait_status(k["id"], "retracted")
    stream = await stack.events()
    assert not [f for _, f in stream if KILLED.encode() in f[b"data"]]
    assert [f[b"type"] for _, f in stream] == [b"item.published", b"item.retracted"]


async def test_webhooks_never_send_or_replay_a_killed_items_text(settings: Settings) -> None:
    """A killed item's published event waiting in an endpoint's queue for a retry is
    dropped, not sent; one already in the dead letters is neither listed nor replayed;
    the events after them are delivered."""
    fast: dict[str, Any] = {
        "webhook_allow_private": True,
        "webhook_retry_base_seconds": 0.05,
        "webhook_retry_max_seconds": 3.0,
        "webhook_max_attempts": 5,
        "webhook_timeout_seconds": 1.0,
        "webhook_disable_after": 50,
    }

    def plan(hit: Hit, n: int) -> int | tuple[int, dict[str, str]]:
        text = str(hit.json)
        if KILLED in text:
            return 410  # final: straight to the dead letters
        if SECOND in text:
            return 429, {"Retry-After": "3"}  # waits in the queue for its retry
        return 200

    async with running_stack(replace(settings, **fast)) as stack, receiver(plan) as rx:
        r = await stack.http.post("/v1/webhooks", json={"url": rx.url}, headers=auth("admin"))
        assert r.status_code == 201, r.text
        dead_url = f"/v1/webhooks/{r.json()['id']}/dead-letters"

        async def dead() -> list[dict[str, Any]]:
            got = await stack.http.get(dead_url, headers=auth("admin"))
            return list(got.json()["dead_letters"])

        dead_one = await stack.publish(KILLED)
        await wait_for(lambda: _len_is(dead(), 1), 15, what="a dead letter")
        queued_one = await stack.publish(SECOND)
        await wait_for(lambda: any(SECOND in str(h.json) for h in rx.hits), 10, what="a try")
        for item in (dead_one, queued_one):
            r = await stack.http.delete(
                f"/v1/items/{item['id']}", params={"reason": "legal"}, headers=auth()
            )
            assert r.status_code == 202, r.text
            await stack.wait_status(item["id"], "retracted")
        assert await dead() == []  # the killed item's letter is not listed
        r = await stack.http.post(dead_url + "/replay", headers=auth("admin"))
        assert r.status_code == 202 and r.json()["replayed"] == []
        after = await stack.publish("After the kill")
        await wait_for(
            # Webhook deliveries carry the plain stream id (no epoch).
            lambda: any(h.json["id"] == after["event_id"].split(".")[0] for h in rx.acked),
            20,
            what="delivery",
        )
        assert [str(h.json).count(SECOND) > 0 for h in rx.hits].count(True) == 1  # no retry
        assert not [h for h in rx.acked if KILLED in str(h.json) or SECOND in str(h.json)]
        assert [h.json["type"] for h in rx.acked] == ["item.retracted"] * 2 + ["item.published"]


async def _len_is(coro: Any, n: int) -> bool:
    return len(await coro) == n


async def test_expiry_keeps_the_events_replayable(stack: Stack) -> None:
    """Expiry is not a kill: a resume from before an expired item still gets its
    publication and its expiry, in order, with no reset."""
    before = await stack.publish("Storm closes port")
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    item = await stack.publish("Road reopens after landslide", expires_at=soon)
    await stack.wait_status(item["id"], "expired", timeout=15)
    got, _ = await _sse_events(stack, before["event_id"], 2)
    assert [(e.type, e.data["item"]["id"]) for e in got] == [
        ("item.published", item["id"]),
        ("item.expired", item["id"]),
    ]
    assert got[0].data["item"]["headline"] == "Road reopens after landslide"

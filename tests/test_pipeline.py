"""The core flow end to end: intake -> worker -> atomic publish -> SSE and WebSocket."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.support.helpers import is_item, sse, ws
from tests.support.stack import Stack, running_stack
from ticker.config import Settings
from ticker.events import event_id


async def test_post_reaches_sse_and_ws(stack: Stack) -> None:
    """A posted item reaches an SSE client and a WebSocket client with the same envelope."""
    async with sse(stack.base) as s, ws(stack.base) as w:
        assert (await s.next()).type == "snapshot"
        assert (await w.next()).type == "snapshot"
        r = await stack.post({"headline": "Quake hits Lima", "edition": "en", "urgency": 1})
        assert r.status_code == 202
        item_id = r.json()["id"]
        got_sse = await s.until(is_item("item.published", item_id))
        got_ws = await w.until(is_item("item.published", item_id))
    assert got_sse.data == got_ws.data
    assert got_sse.data["item"]["headline"] == "Quake hits Lima"
    assert got_sse.id == got_ws.id
    ((stream_id, _),) = await stack.events()
    epoch = (await stack.redis.get(stack.keys.epoch)).decode()
    assert got_sse.id == event_id(stream_id.decode(), epoch)


async def test_snapshot_on_connect_then_live(stack: Stack) -> None:
    """A new client gets the live items for its filter at a stream id, then only newer events."""
    first = await stack.publish("Ceasefire announced in Khartoum", categories=["world"])
    second = await stack.publish("Rates held at 4%", categories=["economy"])
    spanish = await stack.publish("Sismo en Lima", edition="es")
    async with sse(stack.base, {"edition": "en"}) as s:
        snap = await s.next()
        assert snap.type == "snapshot"
        assert [i["id"] for i in snap.data["items"]] == [second["id"], first["id"]]
        assert snap.id == spanish["event_id"]  # the stream position, whatever the filter
        third = await stack.publish("Markets fall")
        live = await s.next()
    assert live.type == "item.published" and live.data["item"]["id"] == third["id"]
    assert s.drain() == []


async def test_snapshot_applies_filters(stack: Stack) -> None:
    """Snapshots and live events honour edition, category, region and max_urgency."""
    await stack.publish("Economy item", categories=["economy"], regions=["europe"], urgency=4)
    wanted = await stack.publish(
        "Politics item", categories=["politics"], regions=["mena"], urgency=2
    )
    params = {"category": "politics,health", "region": "mena", "max_urgency": "3"}
    async with sse(stack.base, params) as s, ws(stack.base, params) as w:
        for client in (s, w):
            snap = await client.next()
            assert [i["id"] for i in snap.data["items"]] == [wanted["id"]]
        await stack.publish("Too low urgency", categories=["politics"], regions=["mena"], urgency=5)
        hit = await stack.publish("Health item", categories=["health"], regions=["mena"], urgency=1)
        assert (await s.next()).data["item"]["id"] == hit["id"]
        assert (await w.next()).data["item"]["id"] == hit["id"]


async def test_sse_resume_gets_exactly_the_missed_events(stack: Stack) -> None:
    """Reconnecting with Last-Event-ID replays exactly the events after it, then goes live."""
    async with sse(stack.base) as s:
        await s.next()
        a = await stack.publish("A")
        seen = await s.next()
    assert seen.data["item"]["id"] == a["id"]
    b = await stack.publish("B")
    c = await stack.publish("C")
    async with sse(stack.base, headers={"Last-Event-ID": seen.id or ""}) as s:
        got = [await s.next(), await s.next()]
        assert [g.data["item"]["id"] for g in got] == [b["id"], c["id"]]
        d = await stack.publish("D")
        assert (await s.next()).data["item"]["id"] == d["id"]
        assert s.drain() == []


async def test_ws_resume_by_query_parameter(stack: Stack) -> None:
    """A WebSocket client resumes with last_event_id and gets only what it missed."""
    a = await stack.publish("A")
    b = await stack.publish("B")
    async with ws(stack.base, {"last_event_id": a["event_id"]}) as w:
        got = await w.next()
        assert got.type == "item.published" and got.data["item"]["id"] == b["id"]
        c = await stack.publish("C")
        assert (await w.next()).data["item"]["id"] == c["id"]


async def test_resume_past_retention_gets_reset_and_snapshot(stack: Stack) -> None:
    """A last id older than what the stream retains gives `reset`, then a fresh snapshot."""
    first = await stack.publish("Old news")
    for n in range(3):
        await stack.publish(f"Newer {n}")
    # Trim the stream exactly, as the retention policy would over time.
    await stack.redis.xtrim(stack.keys.events, maxlen=1, approximate=False)
    async with sse(stack.base, headers={"Last-Event-ID": first["event_id"]}) as s:
        reset = await s.next()
        snap = await s.next()
    assert reset.type == "reset"
    assert snap.type == "snapshot" and len(snap.data["items"]) == 4
    assert reset.id == snap.id


async def test_unknown_future_id_gets_reset(stack: Stack) -> None:
    """A last id the stream never issued (e.g. from a Redis that lost its data) resets."""
    await stack.publish("Now")
    async with ws(stack.base, {"last_event_id": "99999999999999-0"}) as w:
        assert (await w.next()).type == "reset"
        assert (await w.next()).type == "snapshot"


async def test_bad_last_event_id_is_a_400(stack: Stack) -> None:
    """A malformed Last-Event-ID gets a JSON 400 naming it."""
    r = await stack.http.get("/v1/stream", headers={"Last-Event-ID": "yesterday"})
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "Last-Event-ID"


async def test_bad_filter_is_a_400(stack: Stack) -> None:
    """An unknown edition or bad urgency in a stream filter gets a JSON 400 naming it."""
    r = await stack.http.get("/v1/stream", params={"edition": "fr"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "edition"
    r = await stack.http.get("/v1/stream", params={"max_urgency": "ten"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "max_urgency"


async def test_newlines_in_headline_cannot_break_sse_framing(stack: Stack) -> None:
    """A headline with CR/LF arrives as one data line with the text folded to spaces."""
    async with sse(stack.base) as s:
        await s.next()
        item = await stack.publish("Line one\r\n\ndata: injected\revent: x")
        got = await s.next()
        assert got.data["item"]["id"] == item["id"]
        assert got.data["item"]["headline"] == "Line one data: injected event: x"
        frame = bytes(s.raw).split(b"\n\n")[-2]
        assert frame.count(b"\ndata: ") == 1


class _Reads:
    """Counts the Store's resume reads (full, or the retention verdict only)."""

    def __init__(self, stack: Stack) -> None:
        self.full: list[str] = []
        self.checks: list[str] = []
        store = stack.api.server.lifespan.state["store"]
        resume, check = store.resume, store.check

        # Recorded as clients see them: the stream id and the epoch (ticker.epoch).
        async def counted_resume(last_id: str, epoch: str = "") -> Any:
            self.full.append(event_id(last_id, epoch))
            return await resume(last_id, epoch)

        async def counted_check(last_id: str, epoch: str = "") -> Any:
            self.checks.append(event_id(last_id, epoch))
            return await check(last_id, epoch)

        store.resume, store.check = counted_resume, counted_check


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_a_resume_within_the_hubs_memory_reads_no_events_from_redis(
    stack: Stack, transport: str
) -> None:
    """The API process keeps its latest events: a client resuming after one of them gets
    the rest from memory, exactly as from the stream, and Redis only confirms that the
    stream still holds them (a trimmed stream still resets: the retention tests)."""
    a = await stack.publish("A")
    b = await stack.publish("B")
    c = await stack.publish("C")
    reads = _Reads(stack)
    if transport == "sse":
        client = sse(stack.base, headers={"Last-Event-ID": a["event_id"]})
    else:
        client = ws(stack.base, {"last_event_id": a["event_id"]})
    async with client as s:
        got = [await s.next(), await s.next()]
        assert [g.data["item"]["id"] for g in got] == [b["id"], c["id"]]
        d = await stack.publish("D")
        assert (await s.next()).data["item"]["id"] == d["id"]
    assert reads.checks == [a["event_id"]]
    assert a["event_id"] not in reads.full


async def test_a_resume_from_before_the_hubs_memory_reads_the_stream(settings: Settings) -> None:
    async with running_stack(replace(settings, replay_cache_events=2)) as stack:
        a = await stack.publish("A")
        later = [await stack.publish(f"Later {n}") for n in range(3)]
        reads = _Reads(stack)
        async with sse(stack.base, headers={"Last-Event-ID": a["event_id"]}) as s:
            got = [(await s.next()).data["item"]["id"] for _ in later]
        assert got == [item["id"] for item in later]
        # (The subscriber's own catch-up reads the stream too, after its last id.)
        assert a["event_id"] in reads.full and not reads.checks

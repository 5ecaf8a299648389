"""The duplicate decision through the real pipeline: held near-duplicates, publishing
anyway, cancelling, exact repeats, a matcher failure, and the worker's index on restart."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

import workers.ingest
import workers.publish
import workers.stories
from tests.support.helpers import wait_for
from tests.support.stack import Stack, auth
from ticker.constants import Keys
from ticker.redis_conn import WORKER_OPTIONS, connect
from workers.ingest import ingest_item
from workers.matching import THRESHOLD
from workers.stories import Stories
from workers.storyfacts import extract
from workers.worker import job_context

ORIGINAL = "Three soldiers killed in attack on army post in Niger"
REWRITE = "Attack on army post in Niger kills three soldiers, army says"


async def _held(stack: Stack, headline: str = REWRITE, edition: str = "en") -> dict[str, Any]:
    r = await stack.post({"headline": headline, "edition": edition})
    assert r.status_code == 202, r.text
    return await stack.wait_status(r.json()["id"], "held")


async def _history(stack: Stack, item_id: str) -> list[dict[str, Any]]:
    r = await stack.http.get(f"/v1/items/{item_id}/history", headers=auth())
    entries: list[dict[str, Any]] = r.json()["history"]
    return entries


async def test_a_rewrite_is_held_with_its_match_and_no_event(stack: Stack) -> None:
    """Another agency's wording of a published story is held: the matched item, the score,
    shared and differing facts in its status and history, and no event."""
    first = await stack.publish(ORIGINAL)
    view = await _held(stack)
    assert view["duplicate_of"] == first["id"]
    match = view["match"]
    assert match["score"] >= 50 and match["reason"] == "same facts"
    assert "number 3" in match["shared"] and "event kill" in match["shared"]
    assert isinstance(match["differing"], list)
    held = [h for h in await _history(stack, view["id"]) if h["action"] == "held"]
    assert held and held[0]["duplicate_of"] == first["id"] and held[0]["match"] == match
    assert len(await stack.events()) == 1


async def test_a_changed_fact_is_published(stack: Stack) -> None:
    """Wounded for killed, however alike the words, is a new story and goes out."""
    await stack.publish(ORIGINAL)
    await stack.publish("Three soldiers wounded in attack on army post in Niger")
    assert len(await stack.events()) == 2


async def test_publish_anyway_releases_a_held_item(stack: Stack) -> None:
    """An editor publishes a held item: 202 with id, status and status_url, one event, and a
    history entry naming the key."""
    await stack.publish(ORIGINAL)
    view = await _held(stack)
    r = await stack.http.post(f"/v1/items/{view['id']}/publish", headers=auth())
    assert r.status_code == 202, r.text
    assert r.json() == {
        "id": view["id"],
        "status": "queued",
        "status_url": f"/v1/items/{view['id']}",
    }
    await stack.wait_status(view["id"], "published")
    assert len(await stack.events()) == 2
    steps = [(h["action"], h["by"]) for h in await _history(stack, view["id"])]
    assert steps == [
        ("submitted", "editor"),
        ("held", "worker"),
        ("published_anyway", "editor"),
        ("published", "worker"),
    ]


async def test_publish_anyway_needs_a_held_item_and_the_scope(stack: Stack) -> None:
    """Only a held item can be published anyway (409 naming its status); the publish scope
    and the edition's limits apply (a key not for the edition gets the not-found answer, as
    for reads); nothing changes on refusal."""
    first = await stack.publish(ORIGINAL)
    r = await stack.http.post(f"/v1/items/{first['id']}/publish", headers=auth())
    assert r.status_code == 409
    assert r.json()["error"]["field"] == "status" and "published" in r.json()["error"]["message"]
    ar_first = await stack.publish("مقتل ثلاثة جنود في هجوم على موقع للجيش في النيجر", edition="ar")
    held = await _held(stack, "هجوم على موقع للجيش في النيجر يقتل ثلاثة جنود", "ar")
    assert held["duplicate_of"] == ar_first["id"]
    for key, status in (("corrector", 403), ("en-desk", 404)):
        r = await stack.http.post(f"/v1/items/{held['id']}/publish", headers=auth(key))
        assert r.status_code == status, r.text
    assert (await stack.wait_status(held["id"], "held"))["match"] is not None
    missing = await stack.http.post(f"/v1/items/{'0' * 32}/publish", headers=auth())
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "id"
    assert len(await stack.events()) == 2


async def test_deleting_a_held_item_cancels_it(stack: Stack) -> None:
    """DELETE on a held item cancels it like an embargoed one: no event, ever."""
    await stack.publish(ORIGINAL)
    view = await _held(stack)
    r = await stack.http.request(
        "DELETE", f"/v1/items/{view['id']}", headers=auth(), json={"reason": "Same story"}
    )
    assert r.status_code == 202, r.text
    await stack.wait_status(view["id"], "cancelled")
    again = await stack.http.post(f"/v1/items/{view['id']}/publish", headers=auth())
    assert again.status_code == 409 and "cancelled" in again.json()["error"]["message"]
    assert len(await stack.events()) == 1


async def test_an_exact_repeat_is_dropped_as_duplicate(stack: Stack) -> None:
    """The same headline again (label, case and spacing aside) stays a dropped duplicate."""
    first = await stack.publish(ORIGINAL)
    r = await stack.post(
        {
            "headline": "BREAKING: three soldiers killed in attack on army post in NIGER",
            "edition": "en",
        }
    )
    view = await stack.wait_status(r.json()["id"], "duplicate")
    assert view["duplicate_of"] == first["id"] and view["match"] is None
    assert len(await stack.events()) == 1


async def test_a_matcher_failure_publishes_and_logs(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception while scoring never drops an item: it is published and logged."""
    await stack.publish(ORIGINAL)

    def broken(item: dict[str, Any]) -> Any:
        raise RuntimeError("matcher broken on purpose")

    monkeypatch.setattr(workers.ingest, "facts_of", broken)
    with caplog.at_level(logging.ERROR, logger="ticker.worker"):
        r = await stack.post({"headline": REWRITE, "edition": "en"})
        await stack.wait_status(r.json()["id"], "published")
    assert any("story matching failed" in rec.getMessage() for rec in caplog.records)
    assert len(await stack.events()) == 2


async def test_a_restarted_worker_rebuilds_its_index_from_redis(stack: Stack) -> None:
    """A new worker process holds a rewrite of a story published before it started: the
    facts kept beside the item are read back on start."""
    first = await stack.publish(ORIGINAL)
    stored = await stack.redis.hget(stack.keys.item(first["id"]), "facts")
    assert stored and b'"kill"' in stored
    await stack.worker.stop()
    await stack.worker.start()
    view = await _held(stack)
    assert view["duplicate_of"] == first["id"]


async def test_other_editions_are_other_stories(stack: Stack) -> None:
    """The window is per edition: the same words in another edition are not held."""
    await stack.publish(ORIGINAL)
    r = await stack.post({"headline": REWRITE, "edition": "es"})
    await stack.wait_status(r.json()["id"], "published")

    async def two() -> bool:
        return len(await stack.events()) == 2

    await wait_for(two, what="both items published")


REWRITES = [
    ORIGINAL,
    REWRITE,
    "Attack on Niger army post kills three soldiers",
    "Three soldiers die in attack on army post in Niger, officials say",
]


async def test_rewrites_posted_at_once_publish_once(stack: Stack) -> None:
    """Agencies' rewrites of one story arriving together are decided side by side by the
    worker's concurrent jobs: one is published, the others are held against it."""
    posts = await asyncio.gather(*(stack.post({"headline": h, "edition": "en"}) for h in REWRITES))
    ids = [r.json()["id"] for r in posts]
    views: list[dict[str, Any]] = []

    async def decided() -> bool:
        views[:] = [(await stack.http.get(f"/v1/items/{i}", headers=auth())).json() for i in ids]
        return all(v["status"] in ("published", "held") for v in views)

    await wait_for(decided, 10, what="every rewrite decided")
    published = [v["id"] for v in views if v["status"] == "published"]
    assert len(published) == 1, views
    assert all(v["duplicate_of"] == published[0] for v in views if v["status"] == "held")
    assert len(await stack.events()) == 1


def test_a_decision_sees_what_this_process_is_publishing() -> None:
    """The window's facts include items this process is publishing but has not filed, in
    their edition only, until their publish step is over."""
    stories = Stories(None, Keys(), 3600)  # type: ignore[arg-type]  # no Redis read here
    rewrite = extract(REWRITE, "en")
    stories.expect("first", "en", extract(ORIGINAL, "en"))
    found = stories.best("en", rewrite, THRESHOLD, exclude="second")
    assert found is not None and found[0] == "first"
    assert stories.best("en", rewrite, THRESHOLD, exclude="first") is None
    assert stories.best("ar", rewrite, THRESHOLD) is None
    stories.settle("first")
    assert stories.best("en", rewrite, THRESHOLD) is None


@asynccontextmanager
async def _processes(stack: Stack, n: int) -> AsyncIterator[list[dict[str, Any]]]:
    """``n`` worker processes' job contexts (each its own clients and story index), with the
    stack's worker stopped: the test runs their jobs itself, in the order it chooses."""
    await stack.worker.stop()
    conns = [connect(stack.settings, WORKER_OPTIONS) for _ in range(n)]
    try:
        yield [job_context(stack.settings, c) for c in conns]
    finally:
        for c in conns:
            await c.aclose()


async def _queued(stack: Stack, headline: str) -> str:
    r = await stack.post({"headline": headline, "edition": "en"})
    assert r.status_code == 202, r.text
    item_id: str = r.json()["id"]
    return item_id


async def test_two_worker_processes_deciding_at_once_publish_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two worker processes each decide a rewrite of one story before the other's is
    published: the publish step sees the edition changed since the second decision read
    it, so that one is decided again and held against the first."""
    async with _processes(stack, 2) as (a, b):
        first, second = await _queued(stack, ORIGINAL), await _queued(stack, REWRITE)
        b_decided, a_published = asyncio.Event(), asyncio.Event()
        publish_a, publish_b = a["publisher"].publish_new, b["publisher"].publish_new

        async def a_once_b_decided(item: dict[str, Any], **options: Any) -> Any:
            await b_decided.wait()
            try:
                return await publish_a(item, **options)
            finally:
                a_published.set()

        async def b_after_a(item: dict[str, Any], **options: Any) -> Any:
            if not b_decided.is_set():  # its first decision waits; a second goes on
                b_decided.set()
                await a_published.wait()
            return await publish_b(item, **options)

        monkeypatch.setattr(a["publisher"], "publish_new", a_once_b_decided)
        monkeypatch.setattr(b["publisher"], "publish_new", b_after_a)
        done = await asyncio.gather(ingest_item(a, first), ingest_item(b, second))
        assert done == ["published", "held"]
        view = await stack.wait_status(second, "held")
        assert view["duplicate_of"] == first
        assert len(await stack.events()) == 1


async def test_an_item_stamped_late_is_still_read_by_other_workers(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish step stamped before the last one (a slow job, a clock behind) still lands
    after it in the edition's recent items, so another worker reading from where it left
    off finds it and holds a rewrite of it."""
    async with _processes(stack, 2) as (a, w):
        other = await _queued(stack, "Central bank raises interest rates to 5 percent")
        late, rewrite = await _queued(stack, ORIGINAL), await _queued(stack, REWRITE)
        assert await ingest_item(a, other) == "published"
        await w["stories"].sync("en")  # w has read up to the newest item
        behind = time.time() - 5.0
        monkeypatch.setattr(workers.publish, "time", SimpleNamespace(time=lambda: behind))
        assert await ingest_item(a, late) == "published"
        monkeypatch.undo()
        assert await ingest_item(w, rewrite) == "held"
        view = await stack.wait_status(rewrite, "held")
        assert view["duplicate_of"] == late


async def test_a_sync_reads_every_item_of_a_crowded_score(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More items than a page under one score (scores never go back, so a burst shares
    one) are all indexed, and the other workers' count is taken once they are."""
    monkeypatch.setattr(workers.stories, "_BATCH", 3)
    keys, at = stack.keys, int(time.time() * 1000)
    facts = orjson.dumps(extract(ORIGINAL, "en").to_json())
    for n in range(7):
        await stack.redis.hset(keys.item(f"crowd{n}"), mapping={"facts": facts})
        await stack.redis.zadd(keys.recent("en"), {f"crowd{n}": at})
    await stack.redis.set(keys.recent_count("en"), 7)
    stories = Stories(stack.redis, keys, 3600)
    await stories.sync("en")
    assert sorted(stories.index.ids()) == [f"crowd{n}" for n in range(7)]
    assert stories.others("en") == 7

"""Several API processes (real subprocesses) on one Redis: same events, same
order, everywhere; a killed process's clients resume on another one."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from redis.asyncio import Redis

from tests.support.follow import Follower, post_item
from tests.support.helpers import wait_for
from tests.support.procs import ApiProcess, WorkerProcess, running, service_env
from ticker.config import Settings
from ticker.constants import Keys
from ticker.events import event_id, parse_stream_id

pytestmark = pytest.mark.slow


async def stream_ids(redis_url: str, after: str) -> list[tuple[str, str]]:
    """(event id, item id) of every stream entry after the event id ``after``."""
    ms, seq = parse_stream_id(after)
    async with Redis.from_url(redis_url) as r:
        entries = await r.xrange(Keys().events, f"({ms}-{seq}" if (ms, seq) != (0, 0) else "-")
        epoch = (await r.get(Keys().epoch) or b"").decode()
    return [(event_id(eid.decode(), epoch), fields[b"item"].decode()) for eid, fields in entries]


def seen(f: Follower) -> list[tuple[str, str]]:
    return [(e.id or "", e.data["item"]["id"]) for e in f.items]


def assert_in_stream_order(f: Follower) -> None:
    ids = [e.id for e in f.items]
    keys = [parse_stream_id(i or "") for i in ids]
    assert keys == sorted(keys) and len(set(keys)) == len(keys), f"{f}: out of order {ids}"


@pytest.mark.timeout(240)
async def test_three_api_processes_give_every_client_every_event_in_one_order(
    settings: Settings,
) -> None:
    """Three API processes on one Redis: SSE and WS clients on each get all N items,
    with identical stream ids in identical order, matching the Redis Stream."""
    env = service_env(settings.redis_url, catchup_seconds=1)
    apis = [ApiProcess(env) for _ in range(3)]
    worker = WorkerProcess(env)
    n = 24
    with running(worker, *apis):
        for api in apis:
            api.start()
        worker.start()
        followers = [Follower(t, [a.base]).start() for a in apis for t in ("sse", "ws")]
        try:
            await wait_for(lambda: all(f.connected for f in followers), 20, what="snapshots")
            snapshot_ids = {f.events[0].id for f in followers}
            assert len(snapshot_ids) == 1
            async with httpx.AsyncClient(timeout=10) as client:
                # Posted to the three processes, three at a time.
                for start in range(0, n, 3):
                    await asyncio.gather(
                        *(
                            post_item(client, apis[k % 3].base, f"Scale-out item {k} of {n}")
                            for k in range(start, start + 3)
                        )
                    )
            await wait_for(
                lambda: all(len(f.items) >= n for f in followers), 60, what="all items everywhere"
            )
        finally:
            for f in followers:
                await f.stop()
        expected = await stream_ids(settings.redis_url, snapshot_ids.pop() or "0-0")
        assert len(expected) == n
        for f in followers:
            assert f.reconnects == 0, f
            assert [e.type for e in f.events[1:]] == ["item.published"] * n, f
            assert seen(f) == expected, f"{f} differs from the stream"


@pytest.mark.timeout(240)
async def test_killing_one_of_two_api_processes_loses_and_repeats_nothing(
    settings: Settings,
) -> None:
    """kill -9 of the API process serving SSE and WS clients mid-stream: they resume
    on the other process by last event id and end with every item exactly once."""
    env = service_env(settings.redis_url, catchup_seconds=1)
    a, b = ApiProcess(env), ApiProcess(env)
    worker = WorkerProcess(env)
    n = 30
    with running(worker, a, b):
        a.start()
        b.start()
        worker.start()
        followers = [Follower(t, [a.base, b.base]).start() for t in ("sse", "ws")]
        try:
            await wait_for(lambda: all(f.connected for f in followers), 20, what="snapshots")
            first_id = followers[0].events[0].id or "0-0"
            posted: list[str] = []

            async def post_all() -> None:
                async with httpx.AsyncClient(timeout=10) as client:
                    for k in range(n):
                        posted.append(await post_item(client, b.base, f"Kill test item {k}"))
                        await asyncio.sleep(0.05)  # a steady trickle, so the kill lands mid-stream

            poster = asyncio.create_task(post_all())
            await wait_for(lambda: all(len(f.items) >= 8 for f in followers), 30, what="8 items")
            a.kill()
            await asyncio.wait_for(poster, 60)
            await wait_for(
                lambda: all(len(f.items) >= n for f in followers), 60, what="all items after resume"
            )
        finally:
            for f in followers:
                await f.stop()
        expected = await stream_ids(settings.redis_url, first_id)
        assert sorted(item for _, item in expected) == sorted(posted)
        for f in followers:
            assert f.drops >= 1 and f.reconnects >= 1, f
            assert_in_stream_order(f)
            assert seen(f) == expected, f"{f}: lost or repeated events"
            # A resume brings the missed events only: no second snapshot, no reset.
            assert [e.type for e in f.events].count("snapshot") == 1, f

"""Redis Sentinel: a master, a replica and three Sentinels started here; the
master is killed and the service goes on with the promoted replica."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
import redis as redis_sync

from tests.support.follow import Follower, post_item
from tests.support.helpers import wait_for
from tests.support.procs import ApiProcess, WorkerProcess, running, service_env
from tests.support.stack import auth, running_stack
from tests.support.topologies import SentinelGroup
from ticker.config import Settings
from ticker.constants import Keys
from ticker.events import event_id

pytestmark = pytest.mark.slow


@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    g = SentinelGroup().start()
    yield g
    g.close()


async def _publish(client: httpx.AsyncClient, base: str, headline: str) -> str:
    """Post an item and wait until the worker has published it (acknowledged)."""
    item_id = await post_item(client, base, headline, attempts_for=60)

    async def published() -> bool:
        try:
            r = await client.get(f"{base}/v1/items/{item_id}", headers=auth())
        except httpx.TransportError:
            return False
        return r.status_code == 200 and r.json()["status"] == "published"

    await wait_for(published, 60, interval=0.1, what=f"{headline!r} to be published")
    return item_id


@pytest.mark.timeout(240)
async def test_failover_keeps_the_service_going_without_losing_acknowledged_items(
    group: SentinelGroup,
) -> None:
    """kill -9 of the Sentinel-managed master: after the failover (and the old master's
    return as a replica), new items flow and SSE and WS clients hold every
    acknowledged item exactly once, in stream order."""
    env = service_env(
        catchup_seconds=1,
        redis_sentinels=group.addresses,
        redis_sentinel_master=group.name,
        redis_wait_replicas="1",
    )
    api = ApiProcess(env)
    worker = WorkerProcess(env)
    with running(worker, api):
        api.start()
        worker.start()
        followers = [Follower(t, [api.base]).start() for t in ("sse", "ws")]
        try:
            await wait_for(lambda: all(f.connected for f in followers), 20, what="snapshots")
            async with httpx.AsyncClient(timeout=10) as client:
                before = [
                    await _publish(client, api.base, f"Before the failover, {k}") for k in range(5)
                ]
                await wait_for(lambda: all(len(f.items) >= 5 for f in followers), 30, what="5")
                old = group.master.port
                killed = time.monotonic()
                group.master.stop(kill=True)
                await wait_for(
                    lambda: group.master_port() != old, 60, interval=0.2, what="the failover"
                )
                promoted = time.monotonic()
                assert group.master_port() == group.replica.port
                # With TICKER_REDIS_WAIT_REPLICAS=1 nothing is acknowledged until a
                # replica holds it: the old master comes back and Sentinel makes it one.
                group.master.start()
                after = [await _publish(client, api.base, f"After it, {k}") for k in range(5, 10)]
                print(
                    f"failover: replica promoted {promoted - killed:.1f}s after the kill; "
                    f"5 more items published by {time.monotonic() - killed:.1f}s"
                )
            await wait_for(
                lambda: all(len(f.items) >= 10 for f in followers), 60, what="every item"
            )
        finally:
            for f in followers:
                await f.stop()
    with redis_sync.Redis(port=group.replica.port) as r:
        entries = r.xrange(Keys().events)
        epoch = (r.get(Keys().epoch) or b"").decode()
    stream = [(event_id(eid.decode(), epoch), fields[b"item"].decode()) for eid, fields in entries]
    assert sorted(i for _, i in stream) == sorted(before + after), "an acknowledged item was lost"
    for f in followers:
        assert [(e.id, e.data["item"]["id"]) for e in f.items] == stream, f
        assert [e.type for e in f.items] == ["item.published"] * 10, f


@pytest.mark.timeout(60)
async def test_without_a_replica_to_confirm_an_item_the_intake_answers_503(
    settings: Settings,
) -> None:
    """With TICKER_REDIS_WAIT_REPLICAS=1 and no replica, a post is not acknowledged:
    503 with Retry-After, so the client retries with the same Idempotency-Key."""
    strict = replace(settings, redis_wait_replicas=1, redis_wait_timeout_ms=50)
    async with running_stack(strict) as stack:
        r = await stack.post(
            {"headline": "Unconfirmed", "edition": "en"}, headers={"Idempotency-Key": "k1"}
        )
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"]
        assert r.json()["error"]["code"] == "unavailable"

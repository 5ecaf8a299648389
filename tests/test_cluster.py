"""Redis Cluster: three masters started here; the data on the master owning the
prefix's hash slot, sharded pub/sub, the arq queue on a plain Redis."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis as redis_sync

from tests.conftest import auth
from tests.follow import Follower, post_item
from tests.helpers import wait_for
from tests.procs import ApiProcess, ClusterNodes, WorkerProcess, running, service_env
from ticker.config import Settings
from ticker.constants import Keys
from ticker.embedded_redis import find_redis_server
from ticker.exceptions import ConfigError
from ticker.redis_conn import connect

pytestmark = pytest.mark.slow


def _has_cluster_tools() -> bool:
    cli = Path(find_redis_server()).with_name("redis-cli")
    return shutil.which(str(cli)) is not None


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterNodes]:
    if not _has_cluster_tools():
        pytest.skip("redis-cli (redis-tools) is needed to create the cluster")
    nodes = ClusterNodes().start()
    yield nodes
    nodes.close()


def test_cluster_without_a_queue_redis_is_refused() -> None:
    """arq cannot use a cluster node (its arq:abort key is on another slot), so
    Cluster settings without TICKER_QUEUE_REDIS_URL fail at startup, saying why."""
    with pytest.raises(ConfigError, match="TICKER_QUEUE_REDIS_URL"):
        connect(Settings(redis_cluster_nodes="127.0.0.1:7000"))


@pytest.mark.timeout(240)
async def test_whole_flow_on_redis_cluster_with_sharded_pubsub(
    cluster: ClusterNodes, settings: Settings
) -> None:
    """On a three-master cluster: post, correct and retract reach SSE and WS clients
    on two API processes; a client resumes by last id on the other process; every
    key is on the slot owner and both processes hold a sharded subscription."""
    keys = Keys()
    owner = cluster.owner_of(keys.events)
    for node in cluster.nodes:
        with redis_sync.Redis(port=node.port) as r:
            r.flushall()
    # The queue (and arq's results) on the plain session Redis.
    env = service_env(redis_cluster_nodes=cluster.seeds, queue_redis_url=settings.redis_url)
    a, b = ApiProcess(env), ApiProcess(env)
    worker = WorkerProcess(env)
    with running(worker, a, b):
        a.start()
        b.start()
        worker.start()
        sse_a = Follower("sse", [a.base]).start()
        ws_b = Follower("ws", [b.base]).start()
        followers = [sse_a, ws_b]
        try:
            await wait_for(lambda: all(f.connected for f in followers), 20, what="snapshots")
            with redis_sync.Redis(port=owner) as r:
                # Each API process holds one sharded subscription; none is classic.
                assert r.execute_command("PUBSUB", "SHARDNUMSUB", keys.channel)[1] == 2
                assert r.execute_command("PUBSUB", "NUMSUB", keys.channel)[1] == 0
            async with httpx.AsyncClient(timeout=10) as client:
                ids = [await post_item(client, a.base, f"Cluster item {k}") for k in range(3)]
                await wait_for(lambda: all(len(f.items) >= 3 for f in followers), 30, what="3")
                r = await client.patch(
                    f"{b.base}/v1/items/{ids[0]}",
                    json={"headline": "Cluster item 0, corrected to 10"},
                    headers=auth(),
                )
                assert r.status_code == 202, r.text
                await wait_for(lambda: all(len(f.items) >= 4 for f in followers), 30, what="fix")
                r = await client.request(
                    "DELETE",
                    f"{a.base}/v1/items/{ids[1]}",
                    json={"reason": "Could not be confirmed"},
                    headers=auth(),
                )
                assert r.status_code == 202, r.text
                await wait_for(lambda: all(len(f.items) >= 5 for f in followers), 30, what="kill")
                # The SSE client goes away; two items later it resumes on the other process.
                await sse_a.stop()
                more = []
                for k in (3, 4):  # one at a time, so their order is known
                    more.append(await post_item(client, b.base, f"Cluster item {k}"))
                    await wait_for(lambda k=k: len(ws_b.items) >= k + 3, 30, what="while away")
                resumed = Follower("sse", [b.base], last_id=sse_a.last_id).start()
                followers.append(resumed)
                await wait_for(lambda: len(resumed.events) >= 2, 30, what="the resume")
        finally:
            for f in followers:
                await f.stop()

    types = ["item.published"] * 3 + ["item.updated", "item.retracted"]
    for f in (sse_a, ws_b):
        assert [e.type for e in f.items][:5] == types, f
    got = [e.data["item"]["id"] for e in ws_b.items]
    # The three posts are published in the worker's order, then one event per change.
    assert sorted(got[:3]) == sorted(ids) and got[3:] == [ids[0], ids[1], *more]
    # Exactly the two missed events, no snapshot first.
    assert [(e.type, e.data["item"]["id"]) for e in resumed.events] == [
        ("item.published", more[0]),
        ("item.published", more[1]),
    ]
    assert [e.id for e in ws_b.items[5:]] == [e.id for e in resumed.events]
    with redis_sync.Redis(port=owner) as r:
        assert r.xlen(keys.events) == 7
    for node in cluster.nodes:
        if node.port != owner:
            with redis_sync.Redis(port=node.port) as r:
                assert r.dbsize() == 0, "a key landed outside the service's slot"

"""Redis Cluster: three masters started here; the data on the master owning the
prefix's hash slot, sharded pub/sub, the arq queue on a plain Redis."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis as redis_sync
from redis.crc import key_slot

from tests.support.follow import Follower, post_item
from tests.support.helpers import wait_for
from tests.support.procs import ApiProcess, WorkerProcess, running, service_env
from tests.support.receivers import receiver
from tests.support.stack import auth
from tests.support.topologies import ClusterNodes, migrate_slot, move_slot
from ticker.config import Settings
from ticker.constants import Keys
from ticker.embedded_redis import find_redis_server
from ticker.events import event_id
from ticker.exceptions import ConfigError
from ticker.redis_conn import ShardedPubSub, SlotMovedError, connect, open_pubsub, parse_nodes

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
    on two API processes and a webhook receiver (its jobs on the queue Redis); a client
    resumes by last id on the other process; every key is on the slot owner and both
    processes hold a sharded subscription."""
    keys = Keys()
    owner = cluster.owner_of(keys.events)
    for node in cluster.nodes:
        with redis_sync.Redis(port=node.port) as r:
            r.flushall()
    # The queue (and arq's results) on the plain session Redis.
    env = service_env(
        catchup_seconds=1,
        redis_cluster_nodes=cluster.seeds,
        queue_redis_url=settings.redis_url,
        webhook_allow_private="1",  # the receiver is on loopback
    )
    a, b = ApiProcess(env), ApiProcess(env)
    worker = WorkerProcess(env)
    async with receiver() as rx:
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
                    r = await client.post(
                        a.base + "/v1/webhooks", json={"url": rx.url}, headers=auth("admin")
                    )
                    assert r.status_code == 201, r.text
                    ids = [await post_item(client, a.base, f"Cluster item {k}") for k in range(3)]
                    await wait_for(lambda: min(len(f.items) for f in followers) >= 3, 30, what="3")
                    r = await client.patch(
                        f"{b.base}/v1/items/{ids[0]}",
                        json={"headline": "Cluster item 0, corrected to 10"},
                        headers=auth(),
                    )
                    assert r.status_code == 202, r.text
                    await wait_for(
                        lambda: min(len(f.items) for f in followers) >= 4, 30, what="fix"
                    )
                    r = await client.request(
                        "DELETE",
                        f"{a.base}/v1/items/{ids[1]}",
                        json={"reason": "Could not be confirmed"},
                        headers=auth(),
                    )
                    assert r.status_code == 202, r.text
                    await wait_for(
                        lambda: min(len(f.items) for f in followers) >= 5, 30, what="kill"
                    )
                    # The SSE client goes away; two items later it resumes on the other process.
                    await sse_a.stop()
                    more = []
                    for k in (3, 4):  # one at a time, so their order is known
                        more.append(await post_item(client, b.base, f"Cluster item {k}"))
                        await wait_for(lambda k=k: len(ws_b.items) >= k + 3, 30, what="while away")
                    resumed = Follower("sse", [b.base], last_id=sse_a.last_id).start()
                    followers.append(resumed)
                    await wait_for(lambda: len(resumed.events) >= 2, 30, what="the resume")
                    # Counters on the cluster, queue depth from the queue's Redis.
                    metrics = await client.get(a.base + "/metrics")
                    assert metrics.status_code == 200 and "ticker_queue_depth" in metrics.text
                    # The receiver gets the events too (its jobs run off the cluster): six,
                    # or seven if the killed item's went out before the kill took it back.
                    await wait_for(
                        # Webhook deliveries carry the plain stream id (no epoch).
                        lambda: any(
                            h.json["id"] == resumed.events[-1].id.split(".")[0] for h in rx.acked
                        ),
                        30,
                        what="webhook deliveries",
                    )
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
        # Seven events, less the killed item's publication (the kill deletes it).
        assert r.xlen(keys.events) == 6
        stream_ids = [eid.decode() for eid, _ in r.xrange(keys.events)]
    # The plain stream id: clients' ids carry the epoch, the stream's and webhooks' do not.
    [killed] = [e.id.split(".")[0] for e in ws_b.items[:3] if e.data["item"]["id"] == ids[1]]
    assert killed not in stream_ids
    assert [h.json["id"] for h in rx.acked if h.json["id"] != killed] == stream_ids
    for node in cluster.nodes:
        if node.port != owner:
            with redis_sync.Redis(port=node.port) as r:
                assert r.dbsize() == 0, "a key landed outside the service's slot"


def test_node_lists_are_checked() -> None:
    """host:port lists parse (IPv6 in brackets); a malformed entry names the setting."""
    assert parse_nodes(" a:1, [::1]:2 ,", "X") == [("a", 1), ("::1", 2)]
    with pytest.raises(ConfigError, match="TICKER_REDIS_SENTINELS"):
        parse_nodes("a:1,b", "TICKER_REDIS_SENTINELS")
    with pytest.raises(ConfigError, match="names no node"):
        parse_nodes(" , ", "X")
    with pytest.raises(ConfigError, match="no TLS"):
        connect(Settings(redis_sentinels="a:1", redis_sentinel_master="m", redis_url="rediss://a"))


@pytest.mark.timeout(120)
async def test_clients_follow_the_slot_to_its_new_master(
    cluster: ClusterNodes, settings: Settings
) -> None:
    """When the service's slot moves to another master, the data client's next
    connection goes to the new owner (after one SlotMovedError), and the sharded
    subscription is told (sunsubscribe) and raises, so the subscriber reconnects."""
    keys = Keys()
    slot = key_slot(keys.tag.encode())
    old = cluster.owner_of(keys.events)
    new = next(n.port for n in cluster.nodes if n.port != old)
    for node in cluster.nodes:
        with redis_sync.Redis(port=node.port) as r:
            r.flushall()
    conns = connect(Settings(redis_cluster_nodes=cluster.seeds, queue_redis_url=settings.redis_url))
    pubsub = open_pubsub(conns.data, sharded=True)
    assert isinstance(pubsub, ShardedPubSub)
    try:
        await pubsub.ssubscribe(keys.channel)
        assert await pubsub.get_message(timeout=0.2) is None  # the confirmation is skipped
        assert await conns.data.ping()  # a pooled connection to the old owner
        move_slot(cluster, slot, new)
        with pytest.raises(SlotMovedError):
            await conns.data.set(keys.none, "moved")
        await conns.data.set(keys.none, "moved")
        with redis_sync.Redis(port=new) as r:
            assert r.get(keys.none) == b"moved"
        with pytest.raises(SlotMovedError):
            for _ in range(50):
                await pubsub.get_message(timeout=0.1)
        # A new subscription lands on the new owner.
        again = open_pubsub(conns.data, sharded=True)
        assert isinstance(again, ShardedPubSub)
        await again.ssubscribe(keys.channel)
        await conns.data.execute_command("SPUBLISH", keys.channel, "hello")
        message = None
        for _ in range(50):
            message = await again.get_message(timeout=0.1)
            if message:
                break
        assert message is not None and message["type"] == "smessage"
        assert message["data"] == b"hello"
        await again.aclose()
    finally:
        await pubsub.aclose()
        await conns.aclose()
        for node in cluster.nodes:
            with redis_sync.Redis(port=node.port) as r:
                r.flushall()
        move_slot(cluster, slot, old)  # leave the module's cluster as it was


@pytest.mark.timeout(240)
async def test_service_follows_its_slot_through_a_reshard(
    cluster: ClusterNodes, settings: Settings
) -> None:
    """The service's slot, with all its keys, is resharded to another master while
    an API process, a worker and SSE and WS clients run: items posted before and
    after reach every client exactly once, in stream order, from the new master."""
    keys = Keys()
    slot = key_slot(keys.tag.encode())
    old = cluster.owner_of(keys.events)
    new = next(n.port for n in cluster.nodes if n.port != old)
    for node in cluster.nodes:
        with redis_sync.Redis(port=node.port) as r:
            r.flushall()
    env = service_env(
        catchup_seconds=1,
        redis_cluster_nodes=cluster.seeds,
        queue_redis_url=settings.redis_url,
        webhook_allow_private="1",  # the receiver is on loopback
    )
    api, worker = ApiProcess(env), WorkerProcess(env)
    try:
        with running(worker, api):
            api.start()
            worker.start()
            followers = [Follower(t, [api.base]).start() for t in ("sse", "ws")]
            try:
                await wait_for(lambda: all(f.connected for f in followers), 20, what="snapshots")
                async with httpx.AsyncClient(timeout=10) as client:
                    for k in range(3):
                        await post_item(client, api.base, f"Before the reshard {k}")
                    await wait_for(lambda: min(len(f.items) for f in followers) >= 3, 30)
                    migrate_slot(cluster, slot, new)
                    for k in range(3, 6):
                        await post_item(client, api.base, f"After the reshard {k}")
                    await wait_for(lambda: min(len(f.items) for f in followers) >= 6, 60)
                # The API's one subscription followed the slot to the new master.
                with redis_sync.Redis(port=new) as r:
                    assert r.execute_command("PUBSUB", "SHARDNUMSUB", keys.channel)[1] == 1
            finally:
                for f in followers:
                    await f.stop()
        with redis_sync.Redis(port=new) as r:
            entries = r.xrange(keys.events)
            epoch = (r.get(keys.epoch) or b"").decode()
        stream = [
            (event_id(eid.decode(), epoch), fields[b"item"].decode()) for eid, fields in entries
        ]
        assert len(stream) == 6
        for f in followers:
            assert [(e.id, e.data["item"]["id"]) for e in f.items] == stream, f
    finally:
        for node in cluster.nodes:
            with redis_sync.Redis(port=node.port) as r:
                r.flushall()
        move_slot(cluster, slot, old)  # leave the module's cluster as it was

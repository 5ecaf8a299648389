"""Faults: Redis killed or hung, a worker killed mid-job, a client that stops reading.

Real processes throughout: redis-server instances of our own (killed with
SIGKILL or frozen with SIGSTOP), `python -m ticker worker` subprocesses, and
the API on a real socket.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.helpers import Received, SSEStream, WSStream, sse, wait_for, ws
from tests.support.procs import (
    WorkerProcess,
    bare_stack,
    events_for,
    job_result,
    running,
    service_env,
    stall_worker,
)
from tests.support.slow import BODY, flood, tiny_socket
from tests.support.stack import API_KEYS, Stack, auth, running_stack
from ticker.config import Settings
from ticker.constants import CLOSE_SLOW_CLIENT, CLOSE_TRY_AGAIN
from ticker.embedded_redis import RedisProcess
from workers.publish import Publisher

HEADLINES = [
    "Earthquake of magnitude 6.1 strikes off the coast of Chile",
    "Central bank raises interest rates by half a point",
    "Wildfire forces evacuation of three villages near Marseille",
    "Parliament passes the budget after an all-night session",
    "Striking dockworkers reach a deal with port operators",
]


async def collect(client: SSEStream | WSStream, n: int, timeout: float = 20) -> list[str]:
    """The item ids of the next ``n`` events (all must be item.published)."""
    got = []
    for _ in range(n):
        ev: Received = await client.next(timeout=timeout)
        assert ev.type == "item.published", ev
        got.append(ev.data["item"]["id"])
    return got


async def stream_item_ids(stack: Stack) -> list[str]:
    return [fields[b"item"].decode() for _, fields in await stack.events()]


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_acknowledged_items_survive_a_redis_kill_9() -> None:
    """Items acknowledged (202) but not yet published survive kill -9 of Redis (append-only
    file) and are published after the restart, once each, in stream order on SSE and WS."""
    server = RedisProcess(appendonly=True)
    server.start()
    try:
        settings = Settings(redis_url=server.url, api_keys=API_KEYS, worker_poll_delay=0.01)
        async with bare_stack(settings) as stack, sse(stack.base) as s, ws(stack.base) as w:
            await s.next()
            await w.next()
            await stack.worker.start()
            before = await stack.publish("Before Redis is killed")
            await stack.worker.stop()
            acked = []
            for headline in HEADLINES:
                r = await stack.post({"headline": headline, "edition": "en"})
                assert r.status_code == 202, r.text
                acked.append(r.json()["id"])
            assert len(await stack.events()) == 1, "nothing but the first item is published yet"
            server.stop(kill=True)  # SIGKILL: no shutdown, no final AOF rewrite
            server.start()
            await stack.worker.start()
            for item_id in acked:
                await stack.wait_status(item_id, "published", timeout=30)
            order = await stream_item_ids(stack)
            assert order[0] == before["id"] and sorted(order[1:]) == sorted(acked)
            for client in (s, w):
                assert await collect(client, len(order)) == order
            for item_id in acked:
                assert len(await events_for(stack, item_id)) == 1
            await stack.worker.stop()
    finally:
        server.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("stall_at", "rerun_outcome"),
    [("start", "published"), ("end", "exists")],
    ids=["before-publish", "after-publish"],
)
async def test_worker_killed_mid_job_publishes_exactly_once(
    settings: Settings, tmp_path: Path, stall_at: str, rerun_outcome: str
) -> None:
    """A worker killed -9 mid-job (before or after its publish step) leaves the job to
    another worker, which re-runs it once arq's in-progress mark lapses: one event."""
    # job_timeout 1 s: arq's in-progress mark lapses 11 s after the job was taken.
    env = service_env(settings.redis_url, worker_job_timeout=1)
    async with bare_stack(settings) as stack, sse(stack.base) as s:
        await s.next()
        with running() as started:
            started.append(stall_worker(env, tmp_path, stall_at).start())
            r = await stack.post({"headline": HEADLINES[0], "edition": "en"})
            item_id = r.json()["id"]
            reached = tmp_path / "reached"
            await wait_for(reached.exists, 30, what="the job to reach its stall point")
            started[0].kill()
            job_id = reached.read_text()
            assert job_id == f"ingest:{item_id}:0"
            published = await events_for(stack, item_id)
            assert len(published) == (1 if stall_at == "end" else 0)
            started.append(WorkerProcess(env).start())
            result = await job_result(stack, job_id, timeout=45)
            assert (result.result, result.job_try) == (rerun_outcome, 2)
            # Every event of the item is in the stream before this marker.
            marker = await stack.publish(HEADLINES[1], timeout=15)
            got = []
            while not got or got[-1] != marker["id"]:
                got.append((await s.next(timeout=15)).data["item"]["id"])
        assert got == [item_id, marker["id"]]
        assert len(await events_for(stack, item_id)) == 1
        history = (await stack.http.get(f"/v1/items/{item_id}/history", headers=auth())).json()
        assert [h["action"] for h in history["history"]].count("published") == 1


async def _post_answered_within(stack: Stack, seconds: float) -> tuple[int, str, dict[str, str]]:
    """POST an item; the answer must come within ``seconds`` (else TimeoutError)."""
    async with asyncio.timeout(seconds):
        r = await stack.post({"headline": "During the outage", "edition": "en"})
    return r.status_code, r.text, dict(r.headers)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_redis_hung_or_gone_intake_answers_503_and_streams_hold() -> None:
    """With Redis frozen (SIGSTOP) or gone (SIGKILL) the intake answers 503 with Retry-After
    in under 3 s, /readyz says 503, open streams keep their heartbeats, resumes are told
    to retry (503, WS 1013), and once Redis is back clients get every event, including
    one published before the node resubscribed, once each and in order."""
    server = RedisProcess(appendonly=True)
    server.start()
    try:
        settings = Settings(
            redis_url=server.url,
            api_keys=API_KEYS,
            worker_poll_delay=0.01,
            sse_ping_seconds=0.3,
            catchup_seconds=0.5,
        )
        async with running_stack(settings) as stack, sse(stack.base) as s, ws(stack.base) as w:
            await s.next()
            await w.next()
            first = await stack.publish("Before the outage")
            expected = [first["id"]]
            for fault in ("hang", "gone"):
                assert server.proc is not None
                if fault == "hang":
                    os.kill(server.proc.pid, signal.SIGSTOP)
                else:
                    server.stop(kill=True)
                status, text, headers = await _post_answered_within(stack, 3.0)
                assert status == 503, text
                assert int(headers["retry-after"]) > 0
                assert '"code":"unavailable"' in text and "Traceback" not in text
                assert (await stack.http.get("/readyz")).status_code == 503
                pings = s.raw.count(b": ping")
                await wait_for(lambda p=pings: s.raw.count(b": ping") >= p + 2, 10, what="pings")
                # A new client still gets its snapshot from the node's mirror.
                async with sse(stack.base) as late:
                    snap = await late.next(timeout=10)
                    assert snap.type == "snapshot" and len(snap.data["items"]) == len(expected)
                # Resuming needs the stream: told to come back later, in each transport's terms.
                resume = {"last_event_id": snap.id or ""}
                r = await stack.http.get("/v1/stream", params=resume)
                assert r.status_code == 503 and int(r.headers["retry-after"]) > 0, r.text
                async with ws(stack.base, resume) as again:
                    with pytest.raises(ConnectionClosed) as closed:
                        await again.next(timeout=10)
                    assert (
                        closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_TRY_AGAIN
                    )
                if fault == "hang":
                    os.kill(server.proc.pid, signal.SIGCONT)
                else:
                    server.start()
                    # Published by another path while this node may still be reconnecting.
                    pub = Publisher(stack.redis, stack.keys, maxlen=1000, retention_seconds=0)
                    side = _side_item(f"side-{fault}")
                    await pub.publish_new(side)
                    expected.append(side["id"])
                await wait_for(_ready(stack), 30, interval=0.1, what="/readyz to recover")
                after = await stack.publish(HEADLINES[len(expected) % 5] + f" ({fault})", 30)
                expected.append(after["id"])
            for client in (s, w):
                assert await collect(client, len(expected)) == expected
            # A client told to come back later resumes with no gap and no duplicate.
            async with ws(stack.base, {"last_event_id": first["event_id"]}) as back:
                assert await collect(back, len(expected) - 1) == expected[1:]
    finally:
        if server.proc is not None:
            os.kill(server.proc.pid, signal.SIGCONT)
        server.close()


def _ready(stack: Stack):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return (await stack.http.get("/readyz")).status_code == 200

    return check


@pytest.mark.timeout(60)
async def test_readyz_says_so_when_the_queue_redis_is_hung_or_gone(settings: Settings) -> None:
    """With the job queue on its own Redis, /readyz answers 503 with `queue` false when
    that Redis is frozen or gone (within its 1 s bound, not the 10 s socket timeout),
    while the data Redis and the subscription still say true; ready again once it is back."""
    queue = RedisProcess()
    queue.start()
    try:
        with_queue = replace(settings, queue_redis_url=queue.url, redis_timeout=10.0)
        async with running_stack(with_queue) as stack:
            ready = await stack.http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"redis": True, "queue": True, "subscription": True}
            for fault in ("hang", "gone"):
                assert queue.proc is not None
                if fault == "hang":
                    os.kill(queue.proc.pid, signal.SIGSTOP)
                else:
                    queue.stop(kill=True)
                started = time.monotonic()
                r = await stack.http.get("/readyz")
                assert time.monotonic() - started < 5, "the check waited for the socket timeout"
                assert r.status_code == 503, r.text
                assert r.json()["checks"] == {"redis": True, "queue": False, "subscription": True}
                if fault == "hang":
                    os.kill(queue.proc.pid, signal.SIGCONT)
                else:
                    queue.start()
                await wait_for(_ready(stack), 30, interval=0.1, what="/readyz to recover")
    finally:
        if queue.proc is not None:
            os.kill(queue.proc.pid, signal.SIGCONT)
        queue.close()


def _side_item(item_id: str) -> dict[str, object]:
    return {
        "id": item_id,
        "version": 1,
        "headline": f"Published by another path ({item_id})",
        "edition": "en",
        "categories": [],
        "regions": [],
        "urgency": 5,
    }


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_stalled_client_memory_is_bounded_and_readers_stay_on_time(
    settings: Settings,
) -> None:
    """A client that stops reading never holds more than its byte bound plus one event in
    the server; it is cut (WS 4000, SSE closed) while a reader gets every event on time."""
    async with running_stack(replace(settings, client_queue_max=8)) as stack:
        hub = stack.api.app.state.hub
        port = stack.api.port
        ws_sock = tiny_socket(port)
        sse_sock = tiny_socket(port)
        sse_sock.send(b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        peak = 0
        bound = 8 * 1024 + len(BODY) + 1024  # byte limit + one event (with its envelope)

        async def watch() -> None:
            nonlocal peak
            while True:
                for c in hub.clients():
                    if c.direct is not None:
                        peak = max(peak, c.direct.get_write_buffer_size())
                await asyncio.sleep(0.002)

        async with (
            connect(f"ws://127.0.0.1:{port}/v1/ws", sock=ws_sock, max_queue=1) as stalled,
            sse(stack.base) as reader,
        ):
            await reader.next()
            await wait_for(lambda: hub.client_count == 3, what="three clients")
            watcher = asyncio.create_task(watch())
            n = 150
            flooding = asyncio.create_task(flood(stack, n))
            lags = []
            for i in range(n):
                got = await reader.next(timeout=10)
                assert got.data["item"]["id"] == f"flood-{i}"
                lags.append(time.time() - int(got.id.split("-")[0]) / 1000)  # type: ignore[union-attr]
            await flooding
            await wait_for(
                lambda: [c.closed for c in hub.clients()].count(None) == 1,
                timeout=20,
                what="both stalled clients to be cut",
            )
            watcher.cancel()
            assert 0 < peak <= bound, f"a stalled client held {peak} bytes (bound {bound})"
            assert max(lags) < 2.0, f"the reader lagged {max(lags):.2f}s behind"
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await asyncio.wait_for(stalled.recv(), 10)
            assert info.value.rcvd is not None and info.value.rcvd.code == CLOSE_SLOW_CLIENT
            assert await _read_to_eof(sse_sock, 20), "the stalled SSE connection is closed"
        sse_sock.close()


async def _read_to_eof(sock: socket.socket, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 65536), 1)
        except TimeoutError:
            continue
        except OSError:
            return True
        if not data:
            return True
    return False


async def test_a_client_hanging_up_mid_body_is_no_error(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """A POST whose client disconnects halfway through its body logs no error or traceback
    and stores nothing."""
    caplog.set_level(logging.INFO)
    _, writer = await asyncio.open_connection("127.0.0.1", stack.api.port)
    head = (
        "POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: {auth()['Authorization']}\r\nContent-Length: 100\r\n\r\n"
    )
    writer.write(head.encode() + b'{"headline": "Cut off')
    await writer.drain()
    writer.close()
    await wait_for(
        lambda: any(r.name == "ticker.access" for r in caplog.records), 10, what="the access log"
    )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [k async for k in stack.redis.scan_iter(stack.keys.item_prefix + "*")] == []

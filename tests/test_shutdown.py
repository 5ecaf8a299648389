"""Graceful shutdown: SIGTERM to `ticker serve` and `ticker worker` as real subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.helpers import sse, wait_for, ws
from tests.support.procs import (
    ApiProcess,
    WorkerProcess,
    bare_stack,
    events_for,
    job_result,
    running,
    service_env,
    stall_worker,
)
from ticker.config import Settings
from ticker.constants import CLOSE_SHUTDOWN
from ticker.embedded_redis import free_port

# uvicorn re-raises the SIGTERM it caught once it has shut down cleanly.
CLEAN_EXIT = (0, -signal.SIGTERM)


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_sigterm_ends_streams_with_a_reconnect_hint_and_refuses_new_connections(
    settings: Settings,
) -> None:
    """On SIGTERM the API stops accepting, ends SSE with a reconnect comment and a retry
    hint, closes WebSockets with 1012, and exits cleanly within 15 s."""
    with running() as started:
        api = ApiProcess(service_env(settings.redis_url, sse_retry_ms=1500)).spawn()
        started.append(api)
        await api.ready()
        async with sse(api.base) as s, ws(api.base) as w:
            await s.next()
            await w.next()
            api.signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await w.next(timeout=15)
            assert info.value.rcvd is not None and info.value.rcvd.code == CLOSE_SHUTDOWN
            with pytest.raises(EOFError):
                while True:
                    await s.next(timeout=15)
            assert s.raw.endswith(b": shutdown; reconnect with Last-Event-ID\nretry: 1500\n\n")
            # The listening socket closed before the clients were told to go.
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", api.port), timeout=2).close()
        assert await api.wait_exit(15) in CLEAN_EXIT


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_sigterm_to_several_api_processes_closes_every_client_and_exits_0(
    settings: Settings,
) -> None:
    """`ticker serve --workers 2` passes SIGTERM on: every WebSocket, on either process,
    is closed with 1012 and the supervisor exits 0 once both have shut down."""
    with running() as started:
        api = ApiProcess(service_env(settings.redis_url), workers=2).spawn()
        started.append(api)
        await api.ready()
        async with contextlib.AsyncExitStack() as clients:
            conns = [await clients.enter_async_context(ws(api.base)) for _ in range(6)]
            for c in conns:
                await c.next()
            api.signal(signal.SIGTERM)
            for c in conns:
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        await c.next(timeout=15)
                assert info.value.rcvd is not None and info.value.rcvd.code == CLOSE_SHUTDOWN
        assert await api.wait_exit(20) == 0


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_sigterm_lets_the_worker_finish_its_running_job(
    settings: Settings, tmp_path: Path
) -> None:
    """On SIGTERM a worker keeps running its current job within the grace period, finishes
    it (one event, first try) and exits 0."""
    env = service_env(settings.redis_url, worker_shutdown_grace=30)
    async with bare_stack(settings) as stack, sse(stack.base) as s:
        await s.next()
        with running() as started:
            w = stall_worker(env, tmp_path, "inside").start()
            started.append(w)
            r = await stack.post({"headline": "Finished before the worker stops", "edition": "en"})
            item_id = r.json()["id"]
            await wait_for((tmp_path / "reached").exists, 30, what="the job to start")
            w.signal(signal.SIGTERM)
            # A negative check needs a span: the job holds the worker open past the signal.
            await asyncio.sleep(1.0)
            assert w.proc.poll() is None, "the worker quit with a job running"
            (tmp_path / "go").touch()
            assert await w.wait_exit(20) == 0
        result = await job_result(stack, f"ingest:{item_id}:0", timeout=5)
        assert (result.result, result.job_try) == ("published", 1)
        got = await s.next(timeout=10)
        assert got.data["item"]["id"] == item_id
        assert len(await events_for(stack, item_id)) == 1


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_sigterm_hands_back_a_job_that_outlives_the_grace(
    settings: Settings, tmp_path: Path
) -> None:
    """A job still running when the SIGTERM grace ends is handed back to the queue at once
    (not after arq's in-progress timeout), and the next worker publishes it exactly once."""
    env = service_env(settings.redis_url, worker_shutdown_grace=1)
    async with bare_stack(settings) as stack, sse(stack.base) as s:
        await s.next()
        with running() as started:
            w = stall_worker(env, tmp_path, "inside").start()
            started.append(w)
            r = await stack.post({"headline": "Handed back on shutdown", "edition": "en"})
            item_id = r.json()["id"]
            job_id = f"ingest:{item_id}:0"
            await wait_for((tmp_path / "reached").exists, 30, what="the job to start")
            w.signal(signal.SIGTERM)
            assert await w.wait_exit(15) == 0
            assert not await stack.redis.exists(f"arq:in-progress:{job_id}"), "handed back"
            assert await stack.redis.zscore(stack.keys.queue, job_id) is not None
            assert await events_for(stack, item_id) == []
            started.append(WorkerProcess(env).start())
            # Well before the 40 s a lost in-progress mark would take to lapse.
            result = await job_result(stack, job_id, timeout=15)
        assert (result.result, result.job_try) == ("published", 2)
        got = await s.next(timeout=10)
        assert got.data["item"]["id"] == item_id
        assert len(await events_for(stack, item_id)) == 1


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_sigterm_stops_a_worker_that_is_waiting_for_redis(tmp_path: Path) -> None:
    """A worker retrying an unreachable Redis (with backoff) still stops at once on SIGTERM."""
    log = tmp_path / "worker.log"
    with running() as started:
        w = WorkerProcess(service_env(f"redis://127.0.0.1:{free_port()}/0"), log).start()
        started.append(w)
        await wait_for(
            lambda: log.read_bytes().count(b"worker lost Redis") >= 2, 30, what="retries"
        )
        w.signal(signal.SIGTERM)
        assert await w.wait_exit(5) == 0

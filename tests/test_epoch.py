"""A Redis that lost its data is noticed: a new epoch resets every node and client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.helpers import Received, SSEStream, WSStream, sse, wait_for, ws
from tests.support.procs import ApiProcess, WorkerProcess, running, service_env
from tests.support.stack import auth
from ticker.embedded_redis import RedisProcess
from ticker.events import parse_event_id


async def _post(http: httpx.AsyncClient, headline: str) -> str:
    """Post an item (retrying while the service reconnects to Redis); wait until published."""
    body = {"headline": headline, "edition": "en"}
    item_id = ""

    async def accepted() -> bool:
        nonlocal item_id
        r = await http.post("/v1/items", json=body, headers=auth())
        if r.status_code == 202:
            item_id = r.json()["id"]
        return r.status_code == 202

    await wait_for(accepted, 30, interval=0.2, what=f"{headline!r} to be accepted")

    async def published() -> bool:
        r = await http.get(f"/v1/items/{item_id}", headers=auth())
        return r.status_code == 200 and r.json()["status"] == "published"

    await wait_for(published, 30, what=f"{headline!r} to be published")
    return item_id


async def _snapshot_ids(base: str) -> list[str]:
    """The item ids of a new client's snapshot on the API at ``base``."""
    async with sse(base) as s:
        snap = await s.next(10)
    assert snap.type == "snapshot"
    return sorted(item["id"] for item in snap.data["items"])


async def _view(
    client: SSEStream | WSStream, want: set[str], timeout: float = 30
) -> list[Received]:
    """Read until the client's view (the last snapshot plus later items) is ``want``."""
    seen: list[Received] = []
    view: set[str] = set()
    async with asyncio.timeout(timeout):
        while view != want:
            event = await client.next(timeout)
            seen.append(event)
            if event.type == "snapshot":
                view = {item["id"] for item in event.data["items"]}
            elif event.type == "item.published":
                view.add(event.data["item"]["id"])
    return seen


async def _metric(base: str, name: str, **labels: str) -> float:
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(base + "/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


@contextlib.asynccontextmanager
async def _clients(apis: list[ApiProcess]) -> AsyncIterator[list[SSEStream | WSStream]]:
    """An SSE and a WebSocket client on each API process, past their first snapshot."""
    async with contextlib.AsyncExitStack() as stack:
        out: list[SSEStream | WSStream] = []
        for api in apis:
            out.append(await stack.enter_async_context(sse(api.base)))
            out.append(await stack.enter_async_context(ws(api.base)))
        for client in out:
            assert (await client.next(10)).type == "snapshot"
        yield out


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_redis_wiped_under_two_api_processes() -> None:
    """Post 10 items, kill -9 Redis (no persistence) and restart it empty on the same
    port, post 10 more: both API processes end with identical snapshots of only the 10
    new items (the second one slept through the wipe and the posts), every connected
    SSE and WebSocket client got a reset and that view, the
    old items answer 404, each process counted an epoch reset, and a client resuming
    with an id from before the wipe is reset, on either transport."""
    server = RedisProcess(appendonly=False)
    server.start()
    env = service_env(redis_url=server.url)
    apis = [ApiProcess(env), ApiProcess(env)]
    worker = WorkerProcess(env)
    try:
        with running(*apis, worker):
            for api in apis:
                api.start()
            worker.start()
            async with (
                httpx.AsyncClient(base_url=apis[0].base, timeout=10) as http,
                _clients(apis) as clients,
            ):
                old = {await _post(http, f"Before the wipe {n}") for n in range(10)}
                for client in clients:
                    seen = await _view(client, old)
                old_id = seen[-1].id
                assert old_id is not None and parse_event_id(old_id)[1]  # it carries an epoch

                # The second process sleeps through the wipe and the new posts, so it
                # finds a stream that exists again, with later ids: only the epoch
                # tells it the data is another history.
                assert apis[1].proc is not None
                os.kill(apis[1].proc.pid, signal.SIGSTOP)
                try:
                    server.stop(kill=True)
                    server.start()  # same port, nothing on disk: an empty Redis
                    new = {await _post(http, f"After the wipe {n}") for n in range(10)}
                finally:
                    os.kill(apis[1].proc.pid, signal.SIGCONT)
                for client in clients:
                    seen = await _view(client, new)
                    assert "reset" in [e.type for e in seen], seen
                    last = seen[-1].id
                    assert last is not None and parse_event_id(last)[1] != parse_event_id(old_id)[1]
            snapshots = [await _snapshot_ids(api.base) for api in apis]
            assert snapshots[0] == snapshots[1] == sorted(new)
            async with httpx.AsyncClient(base_url=apis[1].base, timeout=10) as http:
                for item_id in old:
                    r = await http.get(f"/v1/items/{item_id}", headers=auth())
                    assert r.status_code == 404
            for api in apis:
                assert await _metric(api.base, "ticker_resets_total", scope="epoch") >= 1
                # A client holding an id from before the wipe is reset, never resumed.
                async with sse(api.base, headers={"Last-Event-ID": old_id}) as s:
                    first, snap = await s.next(10), await s.next(10)
                async with ws(api.base, {"last_event_id": old_id}) as w:
                    assert (await w.next(10)).type == "reset"
                assert first.type == "reset" and snap.type == "snapshot"
                assert sorted(i["id"] for i in snap.data["items"]) == sorted(new)
                assert await _metric(api.base, "ticker_resets_total", scope="client") == 2
    finally:
        server.close()

"""The hub survives Redis restarts and lost pub/sub messages without gaps."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import replace

import orjson
import pytest
import redis as redis_sync

from tests.support.helpers import sse, wait_for, ws
from tests.support.stack import API_KEYS, WorkerRunner, fresh_settings, running_stack
from ticker.config import Settings
from ticker.constants import Keys
from ticker.embedded_redis import RedisProcess
from workers import worker as worker_module


async def test_events_missed_by_pubsub_are_caught_up_from_the_stream(settings: Settings) -> None:
    """An event in the stream whose pub/sub message never came still reaches clients, in order."""
    fast = replace(settings, catchup_seconds=0.2)
    async with running_stack(fast) as stack, sse(stack.base) as s:
        await s.next()
        # Append straight to the stream, as if the PUBLISH had been lost.
        body = {"type": "item.published", "item": _item("lost-1", "Lost in transit")}
        fields = {"type": body["type"], "item": "lost-1", "data": orjson.dumps(body)}
        await stack.redis.xadd(stack.keys.events, fields)  # type: ignore[arg-type]
        got = await s.next(timeout=5)
        assert got.data["item"]["id"] == "lost-1"
        after = await stack.publish("After the lost one")
        assert (await s.next()).data["item"]["id"] == after["id"]


@pytest.mark.slow
async def test_redis_restart_under_connected_clients() -> None:
    """Clients connected through a Redis restart get every event once, in order."""
    server = RedisProcess(appendonly=True)
    server.start()
    try:
        settings = Settings(redis_url=server.url, api_keys=API_KEYS, worker_poll_delay=0.01)
        async with running_stack(settings) as stack, sse(stack.base) as s, ws(stack.base) as w:
            await s.next()
            await w.next()
            before = await stack.publish("Before the restart")
            server.stop(kill=True)  # kill -9: the AOF holds what was acknowledged
            down = await stack.post({"headline": "While down", "edition": "en"})
            assert down.status_code == 503
            assert down.headers["Retry-After"]
            assert down.json()["error"]["code"] == "unavailable"
            server.start()
            # Straight into Redis while the hub may still be reconnecting.
            with redis_sync.Redis.from_url(server.url) as r:
                r.ping()
            after = [await stack.publish(f"After the restart {n}", timeout=15) for n in range(3)]
            expected = [before["id"]] + [a["id"] for a in after]
            for client in (s, w):
                got = []
                while len(got) < len(expected):
                    ev = await client.next(timeout=15)
                    assert ev.type == "item.published", ev
                    got.append(ev.data["item"]["id"])
                assert got == expected
            await wait_for(lambda: stack.api.app.state.hub.token == after[-1]["event_id"])
    finally:
        server.close()


def _item(item_id: str, headline: str) -> dict[str, object]:
    return {
        "id": item_id,
        "version": 1,
        "headline": headline,
        "edition": "en",
        "categories": [],
        "regions": [],
        "urgency": 5,
    }


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_worker_backoff_starts_again_once_it_served(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker whose restart backoff grew through one Redis outage, then served a while,
    meets the next outage with the shortest delay again, not the longest."""
    monkeypatch.setattr(worker_module, "STEADY_SECONDS", 1.0)
    caplog.set_level(logging.WARNING, logger="ticker.worker")
    server = RedisProcess()
    server.start()
    runner = WorkerRunner(fresh_settings(server.url))
    lease = Keys(runner.settings.redis_prefix).webpush_lease

    def delays() -> list[float]:
        found = (re.search(r"restarting in ([\d.]+)s", r.getMessage()) for r in caplog.records)
        return [float(m[1]) for m in found if m]

    def served() -> bool:
        with redis_sync.Redis.from_url(server.url) as r:
            return bool(r.exists(lease))  # taken at the end of the worker's startup

    try:
        await runner.start()
        await wait_for(served, 30, errors=(redis_sync.RedisError,), what="the worker to start")
        server.stop(kill=True)
        await wait_for(lambda: len(delays()) >= 6, 60, what="restarts to back off")
        server.start()
        await wait_for(served, 30, errors=(redis_sync.RedisError,), what="the worker back")
        steady = time.monotonic() + 1.0
        await wait_for(lambda: time.monotonic() > steady, 5, what="a steady second")
        before = len(delays())
        server.stop(kill=True)
        await wait_for(lambda: len(delays()) > before, 30, what="the next outage")
        assert max(delays()[:before]) > 0.5, delays()
        assert delays()[before] <= 0.1, delays()
    finally:
        await runner.stop()
        server.close()

"""Operations: Prometheus metrics, health and readiness, request ids, JSON logs."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from tests.support.helpers import sse, wait_for
from tests.support.procs import WorkerProcess, running, service_env
from tests.support.receivers import receiver
from tests.support.stack import KEYS, Stack
from ticker.config import Settings
from ticker.constants import Keys
from ticker.filters import Filter
from ticker.humanlog import CronChatter
from ticker.logs import JsonFormatter, request_id
from ticker.webhooks.store import WebhookStore


async def scrape(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await stack.http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(r.text)
        for s in fam.samples
    }


async def test_metrics_follow_the_traffic(stack: Stack) -> None:
    """Connections, fan-out, deliveries, lag, intake statuses and duplicates are counted."""
    async with sse(stack.base, {"edition": "en"}) as s:
        await s.next()
        m = await scrape(stack)
        assert m[("ticker_connections", (("edition", "en"), ("transport", "sse")))] == 1
        await stack.publish("Counted")
        await s.next()
        await stack.post({"headline": "Counted", "edition": "en"})
        await stack.post({"edition": "en"})
        await wait_for(lambda: _dups(stack), what="the duplicate to be counted")
        m = await scrape(stack)
    assert m[("ticker_events_fanned_out_total", (("type", "item.published"),))] == 1
    assert m[("ticker_deliveries_total", ())] == 1
    assert m[("ticker_delivery_lag_seconds_count", ())] == 1
    assert m[("ticker_intake_requests_total", (("method", "POST"), ("status", "202")))] == 2
    assert m[("ticker_intake_requests_total", (("method", "POST"), ("status", "422")))] == 1
    assert m[("ticker_duplicates_caught_total", (("kind", "exact"),))] == 1
    assert ("ticker_queue_depth", ()) in m
    m = await scrape(stack)
    assert m[("ticker_connections", (("edition", "en"), ("transport", "sse")))] == 0


async def _dups(stack: Stack) -> bool:
    return bool(await stack.redis.hget(stack.keys.stats, "duplicates|exact"))


async def test_health_and_readiness(stack: Stack) -> None:
    """/healthz answers while the process lives; /readyz checks Redis, the queue and the
    subscription."""
    assert (await stack.http.get("/healthz")).json() == {"status": "ok"}
    ready = await stack.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"redis": True, "queue": True, "subscription": True}


async def test_request_id_is_echoed_or_made(stack: Stack) -> None:
    """A sane X-Request-Id comes back; a missing or hostile one is replaced."""
    r = await stack.http.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await stack.http.get("/healthz", headers={"X-Request-Id": "<script>" * 20})
    assert len(r.headers["x-request-id"]) == 32


def test_json_log_lines_carry_the_request_id() -> None:
    """Log lines are one JSON object with the request id of the request in progress."""
    token = request_id.set("rid-1")
    try:
        record = logging.LogRecord("ticker.x", logging.INFO, __file__, 1, "hello %s", ("w",), None)
        record.status = 202
        line = orjson.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert line["msg"] == "hello w" and line["request_id"] == "rid-1" and line["status"] == 202


async def test_api_keys_never_reach_the_logs(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither a good nor a bad key appears in any log line; the key's name may."""
    caplog.set_level(logging.DEBUG)
    await stack.post({"headline": "Logged", "edition": "en"})
    await stack.http.post("/v1/items", json={}, headers={"Authorization": "Bearer leaked-secret"})
    text = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert "ticker.access" in {r.name for r in caplog.records}
    assert KEYS["editor"] not in text and "leaked-secret" not in text


def _lines(log: Path) -> list[dict[str, Any]]:
    """The worker's JSON log lines so far."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            out.append(orjson.loads(line))
    return out


def _past_a_sweep() -> float:
    """A moment one second past the next webhook sweep (every 5 s on the clock)."""
    return (int(time.time()) // 5 + 1) * 5 + 1.0


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_worker_logs_a_sweep_only_when_it_did_something(
    settings: Settings, tmp_path: Path
) -> None:
    """`ticker worker` at info level writes no line for a cron sweep that found nothing,
    and one line, with the count, for the webhook sweep that re-queued a delivery whose
    job was lost; ordinary jobs keep their lines."""
    log = tmp_path / "worker.log"
    env = service_env(settings.redis_url, log_level="info", webhook_allow_private=1)
    keys = Keys(settings.redis_prefix)
    redis = Redis.from_url(settings.redis_url)
    try:
        async with receiver() as rx:
            with running(WorkerProcess(env, log).start()):
                await wait_for(lambda: any("Starting worker" in x["msg"] for x in _lines(log)), 30)
                quiet_until = _past_a_sweep()
                await wait_for(lambda: time.time() > quiet_until, 10, what="an idle sweep")
                # A backlog with no deliverer and no job: what a crash leaves behind.
                store = WebhookStore(redis, keys)
                ep = await store.create(
                    url=rx.url, filter=Filter(), enabled=True, description="", now="x"
                )
                lost = {"id": "1-0", "type": "item.published", "item": {"id": "lost"}}
                await redis.rpush(keys.webhook_queue(ep.id), orjson.dumps(lost))
                await wait_for(lambda: len(rx.acked) == 1, 20, what="the swept delivery")
                quiet_until = _past_a_sweep()
                await wait_for(lambda: time.time() > quiet_until, 10, what="an idle sweep")
    finally:
        await redis.aclose()
    lines = _lines(log)
    cron = [x["msg"] for x in lines if "cron:" in x["msg"] and "Starting worker" not in x["msg"]]
    assert len(cron) == 1, cron
    assert "cron:sweep_webhooks" in cron[0] and cron[0].endswith(" ● 1"), cron
    assert any("deliver_webhooks" in x["msg"] for x in lines), [x["msg"] for x in lines]
    assert {x["level"] for x in lines} <= {"info", "warning"}


@pytest.mark.parametrize(
    ("level", "msg", "args"),
    [
        (logging.ERROR, "%6.2fs ! %s failed, %s: %s", (0.1, "cron:sweep_webhooks", "E", "x")),
        (logging.WARNING, "%6.2fs ! %s max retries %d exceeded", (0.1, "cron:sweep_expired", 5)),
        (logging.INFO, "%6.2fs ↻ %s retrying job in %0.2fs", (0.1, "cron:sweep_webhooks", 1.0)),
        (logging.INFO, "%6.2fs ← %s ● %s", (0.1, "cron:sweep_expired", "2")),
        (logging.INFO, "%6.2fs → %s(%s)%s", (0.1, "ingest:x:0:ingest_item", "", "")),
    ],
)
def test_cron_failures_and_work_keep_their_level(
    level: int, msg: str, args: tuple[Any, ...]
) -> None:
    """arq's lines for a cron job that failed, retried or did something, and any other
    job's lines, pass the cron filter at their own level."""
    record = logging.LogRecord("arq.worker", level, __file__, 1, msg, args, None)
    assert CronChatter().filter(record) and record.levelno == level

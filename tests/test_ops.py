"""Operations: Prometheus metrics, health and readiness, request ids, JSON logs."""

from __future__ import annotations

import logging

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.helpers import sse, wait_for
from tests.support.stack import KEYS, Stack
from ticker.logs import JsonFormatter, request_id


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

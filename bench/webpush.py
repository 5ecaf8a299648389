"""The Web Push scenario: one flash to N browser subscriptions on a fake push service.

Ticker runs as usual (a private Redis, the API, one worker); the fake push
service (``bench/push_service.py``) runs in this process on loopback over
HTTP/2 and TLS, checking and decrypting one message in a hundred (its CPU is
reported too: on a small machine it shares the cores with the sender). The
subscriptions are written straight into Redis (browsers sharing a few hundred
key pairs, each with its own endpoint), then one flash is posted through the
intake. Reported: alerts per second (first to last accepted), the time from
the POST to the last alert, and the worker's CPU per alert.
"""

from __future__ import annotations

import asyncio
import resource
import time
from typing import Any

import httpx

from bench.procstat import cpu_seconds
from bench.push_service import running_push_service
from bench.stacks import BENCH_KEY, TickerStack
from ticker.constants import Keys
from ticker.webpush.messages import Subscription

__all__ = ["run_webpush"]

KEY_PAIRS = 200  # distinct browser key pairs (endpoints are all distinct)
VERIFY_EVERY = 100


async def run_webpush(
    name: str,
    subscriptions: int,
    workers: int,
    timeout: float,
    source: str | None = None,
    server: str = "ticker",
) -> dict[str, Any]:
    """``source``: another revision's tree (``--baseline``) runs the server and the worker;
    the fake push service, the instrument, is this tree's."""
    async with running_push_service() as service:
        service.verify_every = VERIFY_EVERY
        stack = TickerStack(workers, source=source, name=server)
        stack.extra_env = {
            "TICKER_WEBPUSH_ALLOWED_HOSTS": "localhost",
            "TICKER_WEBPUSH_ALLOW_PRIVATE": "1",
            "TICKER_WEBPUSH_CA_FILE": service.ca_file,
        }
        await asyncio.to_thread(stack.start, "intake")
        try:
            return await _measure(name, server, stack, service, subscriptions, timeout)
        finally:
            await asyncio.to_thread(stack.stop)


async def _measure(
    name: str, server: str, stack: TickerStack, service: Any, n: int, timeout: float
) -> dict[str, Any]:
    from redis.asyncio import Redis

    assert stack.redis is not None
    keys = Keys()
    pairs = [service.browser() for _ in range(KEY_PAIRS)]
    redis = Redis.from_url(stack.redis.url)
    try:
        for start in range(0, n, 5000):
            pipe = redis.pipeline(transaction=False)
            for i in range(start, min(n, start + 5000)):
                b = service.browser(like=pairs[i % KEY_PAIRS])
                raw = b.subscription()
                sub = Subscription(
                    raw["endpoint"], b.key.public_key().public_bytes(*_POINT), b.auth, "en", 2
                )
                pipe.hset(keys.webpush_subscriptions, sub.id, sub.to_json())
            await pipe.execute()
        await redis.incr(keys.webpush_version)
    finally:
        await redis.aclose()
    worker = stack.other_pids()["worker"]
    cpu0, own0 = cpu_seconds(worker), _own_cpu()
    base = f"http://127.0.0.1:{stack.port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        posted = time.monotonic()
        r = await http.post(
            "/v1/items",
            json={"headline": "Bench flash for every browser", "edition": "en", "urgency": 1},
            headers={"Authorization": f"Bearer {BENCH_KEY}"},
        )
        r.raise_for_status()
    deadline = posted + timeout
    while service.accepted < n and time.monotonic() < deadline:  # noqa: ASYNC110 (a poll, bounded)
        await asyncio.sleep(0.05)
    # The worker's processes now: one started during the send counts from zero.
    worker_now = stack.other_pids()["worker"]
    cpu, own = cpu_seconds(worker_now) - cpu0, _own_cpu() - own0
    spread = max(service.last_at - service.first_at, 1e-9)
    return {
        "scenario": name,
        "server": server,
        "kind": "webpush",
        "expected": n,
        "delivered": service.accepted,
        "duplicates": 0,
        "problems": service.problems[:5],
        "alerts_per_s": round(service.accepted / spread),
        "post_to_first_s": round(service.first_at - posted, 3) if service.first_at else None,
        "post_to_last_s": round(service.last_at - posted, 3) if service.last_at else None,
        "worker_cpu_us_per_alert": round(cpu / max(service.accepted, 1) * 1e6, 1),
        # This process: the fake push service (and a poll every 50 ms).
        "push_service_cpu_us_per_alert": round(own / max(service.accepted, 1) * 1e6, 1),
    }


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _point() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives import serialization

    return (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


_POINT = _point()

"""The arq worker: its functions, Redis pool and resources in ``ctx``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arq.connections import ArqRedis
from arq.cron import cron
from arq.worker import Worker, func
from redis.exceptions import RedisError

from ticker.config import Settings
from ticker.constants import Keys
from ticker.publish import Publisher
from workers.changes import apply_change, expire_item, sweep_expired
from workers.ingest import ingest_item
from workers.webhooks import (
    JOB_TIMEOUT,
    deliver_webhooks,
    start_webhooks,
    stop_webhooks,
    sweep_webhooks,
)

__all__ = ["FUNCTIONS", "make_worker", "run_worker"]

log = logging.getLogger("ticker.worker")

FUNCTIONS = [
    ingest_item,
    apply_change,
    expire_item,
    # One job per nudge (unique ids), so results are not kept; retries are its own.
    func(deliver_webhooks, keep_result=0, timeout=JOB_TIMEOUT, max_tries=1000),  # type: ignore[arg-type]
]
CRON_JOBS = [
    cron(sweep_expired, second={0, 30}, run_at_startup=True, unique=True),
    cron(sweep_webhooks, second=set(range(0, 60, 5)), unique=True),
]


def make_worker(settings: Settings, **overrides: Any) -> Worker:
    """A worker on the settings' Redis; tests pass ``handle_signals=False``."""
    keys = Keys(settings.redis_prefix)
    redis = ArqRedis.from_url(settings.redis_url)

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["settings"] = settings
        ctx["keys"] = keys
        ctx["publisher"] = Publisher(
            ctx["redis"],
            keys,
            maxlen=settings.stream_maxlen,
            retention_seconds=settings.stream_retention_seconds,
        )
        await start_webhooks(ctx)

    options: dict[str, Any] = {
        "functions": FUNCTIONS,
        "cron_jobs": CRON_JOBS,
        "queue_name": keys.queue,
        "redis_pool": redis,
        "on_startup": startup,
        "poll_delay": settings.worker_poll_delay,
        "max_tries": 20,
        "job_timeout": 30,
        "keep_result": 3600,
        "max_jobs": 50,
    }
    options.update(overrides)
    return Worker(**options)


async def run_worker(settings: Settings, **overrides: Any) -> None:
    """Run a worker until cancelled, starting it again after Redis errors.

    arq's poll loop ends on a connection error; a Redis restart must not stop
    publishing, so the worker is rebuilt with backoff.
    """
    delay = 0.1
    while True:
        worker = make_worker(settings, **overrides)
        try:
            await worker.async_run()
            return
        except (RedisError, OSError) as exc:
            log.warning("worker lost Redis (%s); restarting in %.1fs", exc, delay)
        finally:
            await stop_webhooks(worker.ctx)
            with contextlib.suppress(Exception):
                await worker.pool.aclose()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)

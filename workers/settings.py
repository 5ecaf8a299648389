"""The arq worker: its functions, Redis pool and resources in ``ctx``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arq.cron import cron
from arq.worker import Worker, func
from redis.exceptions import RedisError

from ticker.config import Settings
from ticker.constants import Keys
from ticker.publish import Publisher
from ticker.redis_conn import WORKER_OPTIONS, Connections, connect
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


def make_worker(
    settings: Settings, *, conns: Connections | None = None, **overrides: Any
) -> Worker:
    """A worker on the settings' Redis; tests pass ``handle_signals=False``.

    In jobs, ``ctx["redis"]`` is the data client and ``ctx["queue"]`` the arq
    pool to enqueue on: the same client unless the queue has its own Redis
    (``TICKER_QUEUE_REDIS_URL``, required with Redis Cluster).
    """
    keys = Keys(settings.redis_prefix)
    clients = conns or connect(settings, WORKER_OPTIONS)

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["settings"] = settings
        ctx["keys"] = keys
        ctx["queue"] = ctx["redis"]
        ctx["redis"] = clients.data
        ctx["publisher"] = Publisher(
            clients.data,
            keys,
            maxlen=settings.stream_maxlen,
            retention_seconds=settings.stream_retention_seconds,
            sharded=clients.sharded,
        )
        await start_webhooks(ctx)

    options: dict[str, Any] = {
        "functions": FUNCTIONS,
        "cron_jobs": CRON_JOBS,
        "queue_name": keys.queue,
        "redis_pool": clients.queue,
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
        conns = connect(settings, WORKER_OPTIONS)
        worker = make_worker(settings, conns=conns, **overrides)
        try:
            await worker.async_run()
            return
        except (RedisError, OSError) as exc:
            log.warning("worker lost Redis (%s); restarting in %.1fs", exc, delay)
        finally:
            await stop_webhooks(worker.ctx)
            with contextlib.suppress(Exception):
                await conns.aclose()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)

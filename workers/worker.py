"""The arq worker: its functions, Redis pool and resources in ``ctx``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

from arq.cron import cron
from arq.worker import func
from redis.exceptions import RedisError

from ticker.config import Settings
from ticker.constants import Keys
from ticker.redis_conn import WORKER_OPTIONS, Connections, connect
from ticker.retries import backoff
from workers.apply import apply_change, expire_item, sweep_expired
from workers.ingest import ingest_item
from workers.pickup import Worker
from workers.publish import Publisher
from workers.stories import Stories, warm_up
from workers.webhooks import (
    deliver_webhooks,
    start_webhooks,
    stop_webhooks,
    sweep_webhooks,
)
from workers.webpush import start_webpush, stop_webpush

__all__ = ["FUNCTIONS", "hand_back", "job_context", "make_worker", "run_worker"]

log = logging.getLogger("ticker.worker")

FUNCTIONS = [
    ingest_item,
    apply_change,
    expire_item,
    # One job per nudge (unique ids), so results are not kept; retries are its own.
    func(deliver_webhooks, keep_result=0, max_tries=1000),  # type: ignore[arg-type]
]
# A worker that served this long after its startup meets the next Redis error as a new
# outage: its restart backoff starts again from the shortest delay.
STEADY_SECONDS = 30.0
# How long a lost worker's senders and connections get to stop before it starts again.
CLEANUP_SECONDS = 5.0
CRON_JOBS = [
    cron(sweep_expired, second={0, 30}, run_at_startup=True, unique=True),
    cron(sweep_webhooks, second=set(range(0, 60, 5)), unique=True),
]


def job_context(settings: Settings, clients: Connections) -> dict[str, Any]:
    """What the item jobs find in ``ctx``, one set per worker process (tests build two)."""
    keys = Keys(settings.redis_prefix)
    return {
        "settings": settings,
        "keys": keys,
        "queue": clients.queue,
        "redis": clients.data,
        "publisher": Publisher(
            clients.data,
            keys,
            maxlen=settings.stream_maxlen,
            retention_seconds=settings.stream_retention_seconds,
            sharded=clients.sharded,
        ),
        # The recent window's story facts, rebuilt from Redis (no headline is re-parsed).
        "stories": Stories(clients.data, keys, settings.dedupe_window_seconds),
    }


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
        ctx.update(job_context(settings, clients))
        # Word lists, stemmers and frequency tables load in the background (about a second
        # a language), so the first flash seldom waits for them and startup never does.
        ctx["warm_up"] = asyncio.create_task(asyncio.to_thread(warm_up, *settings.editions))
        for edition in settings.editions:
            await ctx["stories"].sync(edition)
        await start_webhooks(ctx)
        await start_webpush(ctx)
        ctx["started_at"] = time.monotonic()

    options: dict[str, Any] = {
        "functions": FUNCTIONS,
        "cron_jobs": CRON_JOBS,
        "queue_name": keys.queue,
        "redis_pool": clients.queue,
        "on_startup": startup,
        "poll_delay": settings.worker_poll_delay,
        "max_tries": 20,
        # A crashed worker's job is re-run when its in-progress mark lapses
        # (job_timeout + 10 s); the publish step is idempotent, so once only.
        "job_timeout": settings.worker_job_timeout,
        # SIGTERM: finish running jobs for this long, then hand the rest back.
        "job_completion_wait": settings.worker_shutdown_grace,
        "keep_result": 3600,
        "max_jobs": 50,
    }
    options.update(overrides)
    return Worker(**options)


async def run_worker(settings: Settings, **overrides: Any) -> None:
    """Run a worker until cancelled or signalled, starting it again after Redis errors.

    arq's poll loop ends on a connection error; a Redis restart must not stop
    publishing, so the worker is rebuilt with backoff. Signals are handled here
    rather than by each arq Worker, so SIGTERM also stops a worker that is
    waiting for Redis to come back. ``handle_signals=False`` (tests) leaves
    signals alone.
    """
    handle_signals = overrides.pop("handle_signals", True)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    current: list[Worker] = []

    def on_signal(sig: signal.Signals) -> None:
        if not stopping.is_set():
            stopping.set()
            for worker in current:
                # No new jobs; running ones get the grace period, then go back.
                worker.handle_sig_wait_for_completion(sig)

    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
    failures = 0
    try:
        while not stopping.is_set():
            conns = connect(settings, WORKER_OPTIONS)
            worker = make_worker(settings, conns=conns, handle_signals=False, **overrides)
            current[:] = [worker]
            try:
                await worker.async_run()
                return
            except (RedisError, OSError) as exc:
                started = worker.ctx.get("started_at")
                if started is not None and time.monotonic() - started >= STEADY_SECONDS:
                    failures = 0  # it served a while since the last outage: a new one
                failures += 1
                delay = backoff(failures, 0.1, 5.0)
                log.warning("worker lost Redis (%s); restarting in %.1fs", exc, delay)
            except asyncio.CancelledError:
                # Signalled (arq cancelled its main task after the grace period)
                # or cancelled by our caller: hand unfinished jobs back first.
                await hand_back(worker)
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                return
            finally:
                current.clear()
                # Bounded: a sender still waiting on the lost Redis must not keep the
                # worker from starting again (it logged "restarting" and never did).
                for stop in (stop_webhooks, stop_webpush):
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(stop(worker.ctx), CLEANUP_SECONDS)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conns.aclose(), CLEANUP_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
    finally:
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)


async def hand_back(worker: Worker, timeout: float = 5.0) -> None:
    """Cancel the jobs still running; arq then clears their in-progress mark and
    leaves them queued, so another worker runs them at once (exactly once,
    since publishing is idempotent)."""
    running = [t for t in worker.tasks.values() if not t.done()]
    for t in running:
        t.cancel()
    if running:
        log.info("handing back %d unfinished jobs", len(running))
        await asyncio.wait(running, timeout=timeout)

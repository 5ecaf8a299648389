"""The arq worker: its functions, Redis pool and resources in ``ctx``."""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis
from arq.worker import Worker

from ticker.config import Settings
from ticker.constants import Keys
from ticker.publish import Publisher
from workers.ingest import ingest_item

__all__ = ["FUNCTIONS", "make_worker"]

FUNCTIONS = [ingest_item]


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

    options: dict[str, Any] = {
        "functions": FUNCTIONS,
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

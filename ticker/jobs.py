"""Job names and how they are enqueued: the contract between API and workers.

Job ids make enqueueing idempotent: arq ignores a job id it already holds. A job is
written as arq's ``enqueue_job`` writes it (its keys, its serializer, its lifetimes), in
one atomic Lua step instead of arq's three round trips (``lua/enqueue.lua``): every item
enqueues two jobs (publish, expire), so this is on every item's path.

That leans on arq's undocumented helpers and key layout (tested with the arq range pinned in
pyproject.toml; tests/test_jobs.py compares the two paths' Redis writes). When a helper is
missing, or the step fails in a way Redis does not explain, the public ``enqueue_job`` takes
over for the rest of the process, with one logged error.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from ticker import lua
from ticker.constants import Keys

try:  # arq's own helpers, not its documented API
    from arq.constants import expires_extra_ms, job_key_prefix, result_key_prefix
    from arq.jobs import serialize_job
    from arq.utils import timestamp_ms, to_ms, to_unix_ms
except ImportError:  # pragma: no cover - another arq: the public path
    fast_enqueue = False
else:
    fast_enqueue = True

__all__ = ["enqueue", "enqueue_change", "enqueue_delivery", "enqueue_expiry", "enqueue_ingest"]

INGEST = "ingest_item"
APPLY_CHANGE = "apply_change"
EXPIRE = "expire_item"

log = logging.getLogger("ticker.jobs")


async def enqueue(
    arq: ArqRedis,
    function: str,
    *args: Any,
    job_id: str,
    queue: str,
    defer_until: datetime | None = None,
    defer_by: float | None = None,
) -> bool:
    """Enqueue ``function(*args)`` as arq would (``enqueue_job``); False when a job or a
    result with this id is already held."""
    global fast_enqueue
    if fast_enqueue:
        try:
            return await _enqueue_in_one_step(
                arq, function, args, job_id, queue, defer_until, defer_by
            )
        except RedisError:
            raise  # Redis's own failure: the caller's retry applies, as for enqueue_job
        except Exception:
            fast_enqueue = False
            log.exception("arq's internals are not as tested; enqueueing by enqueue_job")
    job = await arq.enqueue_job(
        function,
        *args,
        _job_id=job_id,
        _queue_name=queue,
        _defer_until=defer_until,
        _defer_by=defer_by,
    )
    return job is not None


async def _enqueue_in_one_step(
    arq: ArqRedis,
    function: str,
    args: tuple[Any, ...],
    job_id: str,
    queue: str,
    defer_until: datetime | None,
    defer_by: float | None,
) -> bool:
    now_ms = timestamp_ms()
    if defer_until is not None:
        score = to_unix_ms(defer_until)
    elif defer_by:
        score = now_ms + to_ms(defer_by)
    else:
        score = now_ms
    lifetime = score - now_ms + getattr(arq, "expires_extra_ms", expires_extra_ms)
    job = serialize_job(
        function, args, {}, None, now_ms, serializer=getattr(arq, "job_serializer", None)
    )
    keys = (job_key_prefix + job_id, result_key_prefix + job_id, queue)
    argv: tuple[Any, ...] = (*keys, job_id, score, lifetime, job)
    return bool(await lua.run(arq, "enqueue", 3, *argv))


async def enqueue_ingest(
    arq: ArqRedis, keys: Keys, item_id: str, *, rev: str = "0", defer_until: datetime | None = None
) -> None:
    """Publish version 1 (at ``defer_until`` for an embargo); one job per draft revision."""
    await enqueue(
        arq,
        INGEST,
        item_id,
        job_id=f"ingest:{item_id}:{rev}",
        queue=keys.queue,
        defer_until=defer_until,
    )


async def enqueue_change(arq: ArqRedis, keys: Keys, item_id: str, version: int) -> None:
    """Apply an accepted correction, retraction or expiry (version 2 and up)."""
    await enqueue(
        arq, APPLY_CHANGE, item_id, version, job_id=f"change:{item_id}:{version}", queue=keys.queue
    )


async def enqueue_expiry(
    arq: ArqRedis, keys: Keys, item_id: str, expires_at: str, when: datetime
) -> None:
    """Expire the item at ``when``, unless a later correction moved its expiry.

    A time already past runs at once: arq sizes a job's lifetime from its due time, so a
    job due in the past would lapse unrun ("job expired")."""
    when = max(when, datetime.now(UTC))
    await enqueue(
        arq,
        EXPIRE,
        item_id,
        expires_at,
        job_id=f"expire:{item_id}:{expires_at}",
        queue=keys.queue,
        defer_until=when,
    )


DELIVER_WEBHOOKS = "deliver_webhooks"


async def enqueue_delivery(
    arq: ArqRedis, keys: Keys, endpoint_id: str, reason: str, defer_by: float | None = None
) -> None:
    """Start (or continue) delivering an endpoint's queue; ``reason`` makes the job id
    (an event id, a retry, a replay), so the same nudge is never queued twice."""
    await enqueue(
        arq,
        DELIVER_WEBHOOKS,
        endpoint_id,
        job_id=f"webhook:{endpoint_id}:{reason}",
        queue=keys.queue,
        defer_by=defer_by,
    )

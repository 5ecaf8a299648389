"""Job names and how they are enqueued: the contract between API and workers.

Job ids make enqueueing idempotent: arq ignores a job id it already holds.
"""

from __future__ import annotations

from datetime import UTC, datetime

from arq.connections import ArqRedis

from ticker.constants import Keys

__all__ = ["enqueue_change", "enqueue_delivery", "enqueue_expiry", "enqueue_ingest"]

INGEST = "ingest_item"
APPLY_CHANGE = "apply_change"
EXPIRE = "expire_item"


async def enqueue_ingest(
    arq: ArqRedis, keys: Keys, item_id: str, *, rev: str = "0", defer_until: datetime | None = None
) -> None:
    """Publish version 1 (at ``defer_until`` for an embargo); one job per draft revision."""
    await arq.enqueue_job(
        INGEST,
        item_id,
        _job_id=f"ingest:{item_id}:{rev}",
        _queue_name=keys.queue,
        _defer_until=defer_until,
    )


async def enqueue_change(arq: ArqRedis, keys: Keys, item_id: str, version: int) -> None:
    """Apply an accepted correction, retraction or expiry (version 2 and up)."""
    await arq.enqueue_job(
        APPLY_CHANGE,
        item_id,
        version,
        _job_id=f"change:{item_id}:{version}",
        _queue_name=keys.queue,
    )


async def enqueue_expiry(
    arq: ArqRedis, keys: Keys, item_id: str, expires_at: str, when: datetime
) -> None:
    """Expire the item at ``when``, unless a later correction moved its expiry.

    A time already past runs at once: arq sizes a job's lifetime from its due time, so a
    job due in the past would lapse unrun ("job expired")."""
    when = max(when, datetime.now(UTC))
    await arq.enqueue_job(
        EXPIRE,
        item_id,
        expires_at,
        _job_id=f"expire:{item_id}:{expires_at}",
        _queue_name=keys.queue,
        _defer_until=when,
    )


DELIVER_WEBHOOKS = "deliver_webhooks"


async def enqueue_delivery(
    arq: ArqRedis, keys: Keys, endpoint_id: str, reason: str, defer_by: float | None = None
) -> None:
    """Start (or continue) delivering an endpoint's queue; ``reason`` makes the job id
    (an event id, a retry, a replay), so the same nudge is never queued twice."""
    await arq.enqueue_job(
        DELIVER_WEBHOOKS,
        endpoint_id,
        _job_id=f"webhook:{endpoint_id}:{reason}",
        _queue_name=keys.queue,
        _defer_by=defer_by,
    )

"""Applying accepted changes: corrections, retractions and expiry, in version order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from arq import Retry
from redis.exceptions import RedisError

from ticker.intake.accept import accept_change
from ticker.intake.deskfeed import note_status
from ticker.intake.schema import parse_time
from workers.ingest import record, schedule_expiry
from workers.items import PUBLIC_FIELDS, build_item, iso, subject_of

__all__ = ["apply_change", "expire_item", "sweep_expired"]

EVENT_OF = {"update": "item.updated", "retract": "item.retracted", "expire": "item.expired"}
STATUS_OF = {"update": "published", "retract": "retracted", "expire": "expired"}
# Item fields that are not input fields (set by the service, never patched).
_SERVICE_FIELDS = {"id", "version", "created_at", "published_at", "updated_at"}


async def apply_change(ctx: dict[str, Any], item_id: str, version: int) -> str:
    """Publish change ``version`` once, after every version before it."""
    try:
        return await _apply(ctx, item_id, version)
    except (RedisError, OSError) as exc:
        raise Retry(defer=1) from exc


async def _apply(ctx: dict[str, Any], item_id: str, version: int) -> str:
    keys = ctx["keys"]
    raw = await ctx["redis"].hgetall(keys.item(item_id))
    published = int(raw.get(b"published_version", b"0"))
    if published >= version:
        return "exists"
    if published < version - 1:
        raise Retry(defer=0.2)  # the version before this one is still pending
    change = orjson.loads(raw[f"change:{version}".encode()])
    old = orjson.loads(raw[b"item"])
    kind = change["kind"]
    now = datetime.now(UTC)
    if kind == "update":
        data = {
            k: v
            for k, v in old.items()
            if k in PUBLIC_FIELDS and k not in _SERVICE_FIELDS and v is not None
        }
        data.update(change["patch"] or {})
        data.pop("embargoed_until", None)  # already out: an embargo no longer applies
        item: dict[str, Any] | None = build_item(
            item_id,
            data,
            version=version,
            created_at=old["created_at"],
            published_at=old["published_at"],
            now=now,
            settings=ctx["settings"],
        )
        body: dict[str, Any] = {"item": item, "previous": subject_of(old)}
        live = "keep"
    else:
        item = None
        body = {"item": {**subject_of(old), "version": version}, "reason": change["reason"]}
        live = "remove"
    outcome = await ctx["publisher"].emit(
        item_id=item_id,
        version=version,
        event_type=EVENT_OF[kind],
        body=body,
        item=item,
        status=STATUS_OF[kind],
        live=live,
        edition=old["edition"],
    )
    if outcome.status == "wait":
        raise Retry(defer=0.2)
    await record(ctx, item_id, outcome, version, now)
    if outcome.status == "published":
        await note_status(ctx["redis"], keys, item_id, by=change.get("by"))
    if (
        outcome.status == "published"
        and item is not None
        and item["expires_at"] != old["expires_at"]
    ):
        await schedule_expiry(ctx, item)
    return outcome.status


async def expire_item(ctx: dict[str, Any], item_id: str, expires_at: str) -> str:
    """Take an item off the ticker at its expiry, unless a correction moved it."""
    raw = await ctx["redis"].hgetall(ctx["keys"].item(item_id))
    if raw.get(b"status") != b"published" or raw.get(b"closed") or b"item" not in raw:
        return "skipped"
    item = orjson.loads(raw[b"item"])
    if item["expires_at"] != expires_at:
        return "moved"  # the job for the new expiry time will do it
    remaining = (parse_time(expires_at, "expires_at") - datetime.now(UTC)).total_seconds()
    if remaining > 0.05:
        raise Retry(defer=remaining)
    try:
        accepted = await accept_change(
            ctx["redis"],
            ctx["keys"],
            item_id,
            kind="expire",
            by="system",
            at=iso(datetime.now(UTC)),
            reason="expired",
        )
    except Exception:  # retracted or expired meanwhile: nothing to do
        return "skipped"
    return await apply_change(ctx, item_id, accepted.version)


async def sweep_expired(ctx: dict[str, Any]) -> int:
    """Cron safety net: expire live items whose deferred expiry job was lost."""
    keys, redis = ctx["keys"], ctx["redis"]
    ids = await redis.zrange(keys.live, 0, -1)
    now = datetime.now(UTC)
    n = 0
    # A page of items per round trip: one read each took the sweep past its job timeout
    # with a few thousand live items, so it never finished.
    for start in range(0, len(ids), _SWEEP_PAGE):
        async with redis.pipeline(transaction=False) as pipe:
            for raw_id in ids[start : start + _SWEEP_PAGE]:
                pipe.hget(keys.item(raw_id.decode()), "item")
            docs = await pipe.execute()
        for doc in docs:
            if doc is None:
                continue
            item = orjson.loads(doc)
            if item.get("expires_at") and parse_time(item["expires_at"], "expires_at") <= now:
                n += await expire_item(ctx, item["id"], item["expires_at"]) == "published"
    return n


_SWEEP_PAGE = 500

"""The ingest job: normalise, drop duplicates, publish in one atomic step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from arq import Retry
from redis.exceptions import RedisError

from ticker.config import Settings
from ticker.constants import Keys
from ticker.deskfeed import note_status
from ticker.items import build_item, iso
from ticker.jobs import enqueue_expiry
from ticker.metrics import incr_stat
from ticker.normalise import dedupe_key, language_of
from ticker.publish import Outcome
from ticker.schema import parse_time

__all__ = ["ingest_item", "record", "schedule_expiry"]

# An embargo job may be picked up a moment early; within this, it publishes.
EMBARGO_SLACK = timedelta(milliseconds=50)


async def ingest_item(ctx: dict[str, Any], item_id: str) -> str:
    """Publish a queued item once; a re-run (crash, retry) publishes nothing twice."""
    try:
        return await _ingest(ctx, item_id)
    except (RedisError, OSError) as exc:
        raise Retry(defer=1) from exc  # Redis is restarting: try again shortly


async def _ingest(ctx: dict[str, Any], item_id: str) -> str:
    settings: Settings = ctx["settings"]
    keys: Keys = ctx["keys"]
    redis = ctx["redis"]
    raw = await redis.hgetall(keys.item(item_id))
    if not raw or b"submitted" not in raw:
        return "missing"
    if raw[b"status"] == b"cancelled":
        return "cancelled"
    data = orjson.loads(raw[b"submitted"])
    now = datetime.now(UTC)
    if data.get("embargoed_until"):
        until = parse_time(data["embargoed_until"], "embargoed_until")
        if until > now + EMBARGO_SLACK and int(raw.get(b"published_version", b"0")) == 0:
            return "embargoed"  # the job for this revision's embargo time publishes it
    item = build_item(
        item_id,
        data,
        version=1,
        created_at=raw[b"created_at"].decode(),
        published_at=iso(now),
        now=now,
        settings=settings,
    )
    force = bool(data.get("force"))
    if not force and (match := await near_duplicate(ctx, item)):
        original, headline = match
        same = dedupe_key(headline, item["edition"]) == dedupe_key(
            item["headline"], item["edition"]
        )
        await redis.hset(
            keys.item(item_id), mapping={"status": "duplicate", "duplicate_of": original}
        )
        await record(ctx, item_id, Outcome("duplicate", original), 1, now, near=not same)
        await note_status(redis, keys, item_id, by="worker")
        await incr_stat(redis, keys, "duplicates", "exact" if same else "near")
        return "duplicate"
    outcome = await ctx["publisher"].publish_new(
        item,
        dedupe_key=None if force else dedupe_key(item["headline"], item["edition"]),
        dedupe_ttl=settings.dedupe_window_seconds,
        recent_window_ms=settings.dedupe_window_seconds * 1000,
        rev=raw.get(b"rev", b"0").decode(),
    )
    if outcome.status == "stale":
        raise Retry(defer=0.05)  # the draft was edited while we read it
    await record(ctx, item_id, outcome, 1, now)
    if outcome.status in ("published", "duplicate"):
        await note_status(redis, keys, item_id, by="worker")
    if outcome.status == "duplicate":
        await incr_stat(redis, keys, "duplicates", "exact")
    if outcome.status == "published":
        await schedule_expiry(ctx, item)
    return outcome.status


async def near_duplicate(ctx: dict[str, Any], item: dict[str, Any]) -> tuple[str, str] | None:
    """The id and headline of a recent item of the same edition telling the same story."""
    from workers.dedupe import best_match

    settings: Settings = ctx["settings"]
    keys: Keys = ctx["keys"]
    redis = ctx["redis"]
    since = (datetime.now(UTC).timestamp() - settings.dedupe_window_seconds) * 1000
    ids = await redis.zrangebyscore(keys.recent(item["edition"]), since, "+inf")
    if not ids:
        return None
    async with redis.pipeline(transaction=False) as pipe:
        for i in ids:
            pipe.hget(keys.item(i.decode()), "item")
        docs = await pipe.execute()
    candidates = [
        (d["id"], d["headline"]) for d in map(_loads, docs) if d and d["id"] != item["id"]
    ]
    found = best_match(
        item["headline"],
        candidates,
        language_of(item["edition"]),
        settings.near_duplicate_threshold,
    )
    return (found, dict(candidates)[found]) if found else None


def _loads(doc: bytes | None) -> dict[str, Any] | None:
    return orjson.loads(doc) if doc else None


async def record(
    ctx: dict[str, Any],
    item_id: str,
    outcome: Outcome,
    version: int,
    now: datetime,
    near: bool = False,
) -> None:
    """Append what the worker did to the item's audit trail."""
    if outcome.status not in ("published", "duplicate"):
        return
    entry: dict[str, Any] = {"at": iso(now), "by": "worker", "version": version}
    if outcome.status == "duplicate":
        entry.update(action="duplicate", duplicate_of=outcome.ref, near=near)
    else:
        entry.update(action="published" if version == 1 else "applied", event_id=outcome.ref)
    await ctx["redis"].rpush(ctx["keys"].history(item_id), orjson.dumps(entry))


async def schedule_expiry(ctx: dict[str, Any], item: dict[str, Any]) -> None:
    when = parse_time(item["expires_at"], "expires_at")
    await enqueue_expiry(ctx["queue"], ctx["keys"], item["id"], item["expires_at"], when)

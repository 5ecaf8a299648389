"""The ingest job: normalise, drop exact repeats, hold near-duplicates, publish in one
atomic step (the duplicate decision: docs/story-matching.md)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from arq import Retry
from redis.exceptions import RedisError

from ticker import lua
from ticker.config import Settings
from ticker.constants import Keys
from ticker.intake.deskfeed import note_status
from ticker.intake.schema import parse_time
from ticker.jobs import enqueue_expiry
from ticker.metrics import incr_stat
from workers.items import build_item, iso
from workers.matching import Verdict
from workers.normalise import dedupe_key
from workers.publish import Outcome
from workers.stories import Stories, facts_of
from workers.storyfacts import Facts

__all__ = ["ingest_item", "record", "schedule_expiry"]

log = logging.getLogger("ticker.worker")

# An embargo job may be picked up a moment early; within this, it publishes.
EMBARGO_SLACK = timedelta(milliseconds=50)
# Decisions a job makes before it lets arq run it again, when other workers publish in
# its edition between each decision and its publish step (a hold's check takes one).
DECISIONS = 6


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
    rev = raw.get(b"rev", b"0").decode()
    # "force" (admin) and an editor's "publish anyway" skip the near-duplicate search; so
    # does a re-run of a job that published already (the atomic step answers "exists").
    rerun = int(raw.get(b"published_version", b"0")) > 0
    force = bool(data.get("force")) or raw.get(b"publish_anyway") == b"1" or rerun
    key = None if force else dedupe_key(item["headline"], item["edition"])
    stories: Stories | None = ctx.get("stories")
    edition = item["edition"]
    facts: Facts | None = None
    # The decision reads no Redis: the index holds this process's items, and the publish
    # step refuses it if another worker has published in the edition since the index read
    # it; an exact repeat is refused by the publish step too (its dedupe key).
    deciding = not force
    if deciding:
        try:
            facts = facts_of(item)
        except Exception:  # a failure to score publishes: never drop an item on a bug
            log.exception("story matching failed for %s; publishing it", item_id)
            deciding = False
    elif stories is not None and not rerun:
        facts = _facts_or_none(item)  # kept for later decisions, though none is made now
    checked = False  # the exact-repeat check and the window read for this job's decision
    try:
        for _ in range(DECISIONS):
            match: tuple[str, Verdict] | None = None
            others: int | None = None
            if deciding:
                assert stories is not None and facts is not None
                try:
                    threshold = settings.near_duplicate_threshold
                    match = stories.best(edition, facts, threshold, exclude=item_id)
                    others = stories.others(edition)
                except Exception:
                    log.exception("story matching failed for %s; publishing it", item_id)
                    deciding, facts = False, None
            if match is not None and not checked:
                # A match (rare): an exact repeat is dropped, not held, and a hold is
                # decided on the window as Redis has it: both read in one trip.
                assert stories is not None and key is not None
                async with redis.pipeline(transaction=False) as pipe:
                    pipe.get(keys.dedupe(key))
                    mark = stories.look(pipe, edition)
                    first, *reads = await pipe.execute()
                if first and first.decode() != item_id:  # dropped, as it always was
                    return await _duplicate(ctx, item_id, first.decode(), now)
                await stories.sync(edition, (mark, reads))
                checked = True
                continue
            if match is not None:
                return await _hold(ctx, item_id, rev, match, now)
            # The facts are stored in the publish step itself, and this process's index
            # takes them from memory: a decision running meanwhile never re-extracts a
            # headline it sees in the recent set before they are filed. (No await between
            # the decision and this.)
            if stories is not None and facts is not None:
                stories.expect(item_id, edition, facts)
            outcome = await ctx["publisher"].publish_new(
                item,
                dedupe_key=key,
                dedupe_ttl=settings.dedupe_window_seconds,
                recent_window_ms=settings.dedupe_window_seconds * 1000,
                rev=rev,
                facts=orjson.dumps(facts.to_json()) if facts is not None else None,
                writer=stories.writer if stories is not None else None,
                others=others,
            )
            if outcome.status != "changed":
                break
            # Another worker published in this edition since the decision's index was
            # read: its item may tell this story. Read it and decide again.
            assert stories is not None
            await stories.sync(edition)
        else:
            raise Retry(defer=0.05)  # other workers kept publishing: try again shortly
        if outcome.status == "published" and stories is not None and facts is not None:
            stories.filed(item_id, edition, facts)
    finally:
        if stories is not None:
            stories.settle(item_id)
    if outcome.status == "stale":
        raise Retry(defer=0.05)  # the draft was edited while we read it
    if outcome.status in ("published", "duplicate"):
        # The audit entry and the desk's read of the item after it: one trip.
        async with redis.pipeline(transaction=False) as pipe:
            pipe.rpush(keys.history(item_id), orjson.dumps(_entry(outcome, 1, now)))
            pipe.hgetall(keys.item(item_id))
            pushed, after = await pipe.execute(raise_on_error=False)
        if isinstance(pushed, Exception):
            raise pushed  # the audit trail must hold it: the job is retried
        # The desk note is best effort, as ever: an error reading the item is its own.
        await note_status(
            redis, keys, item_id, by="worker", raw=None if isinstance(after, Exception) else after
        )
    if outcome.status == "duplicate":
        await incr_stat(redis, keys, "duplicates", "exact")
    if outcome.status == "published" and stories is not None:
        await schedule_expiry(ctx, item)
    return outcome.status


async def _duplicate(ctx: dict[str, Any], item_id: str, original: str, now: datetime) -> str:
    redis, keys = ctx["redis"], ctx["keys"]
    await redis.hset(keys.item(item_id), mapping={"status": "duplicate", "duplicate_of": original})
    await record(ctx, item_id, Outcome("duplicate", original), 1, now)
    await note_status(redis, keys, item_id, by="worker")
    await incr_stat(redis, keys, "duplicates", "exact")
    return "duplicate"


async def _hold(
    ctx: dict[str, Any], item_id: str, rev: str, match: tuple[str, Verdict], now: datetime
) -> str:
    """A near-duplicate waits for an editor: status held, why, and no event."""
    redis, keys = ctx["redis"], ctx["keys"]
    original, verdict = match
    why = orjson.dumps(verdict.to_json())
    entry = {
        "at": iso(now),
        "by": "worker",
        "version": 1,
        "action": "held",
        "duplicate_of": original,
        "match": verdict.to_json(),
    }
    result = await lua.run(
        redis,
        "hold",
        2,
        keys.item(item_id),
        keys.history(item_id),
        rev,
        original,
        why,
        orjson.dumps(entry),
    )
    if result == b"stale":
        raise Retry(defer=0.05)  # edited while we read it: decide on the new text
    if result == b"held":
        await note_status(redis, keys, item_id, by="worker")  # the desk shows it at once
        await incr_stat(redis, keys, "duplicates", "near")
    return result.decode() if isinstance(result, bytes) else str(result)


def _facts_or_none(item: dict[str, Any]) -> Facts | None:
    """An item's facts for the index; a failure leaves it out of it, never unpublished."""
    try:
        return facts_of(item)
    except Exception:
        log.exception("story facts of %s failed; it is not indexed", item["id"])
        return None


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
    entry = _entry(outcome, version, now, near)
    await ctx["redis"].rpush(ctx["keys"].history(item_id), orjson.dumps(entry))


def _entry(outcome: Outcome, version: int, now: datetime, near: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": iso(now), "by": "worker", "version": version}
    if outcome.status == "duplicate":
        entry.update(action="duplicate", duplicate_of=outcome.ref, near=near)
    else:
        entry.update(action="published" if version == 1 else "applied", event_id=outcome.ref)
    return entry


async def schedule_expiry(ctx: dict[str, Any], item: dict[str, Any]) -> None:
    when = parse_time(item["expires_at"], "expires_at")
    await enqueue_expiry(ctx["queue"], ctx["keys"], item["id"], item["expires_at"], when)

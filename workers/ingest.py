"""The ingest job: normalise, drop duplicates, publish in one atomic step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from ticker.config import Settings
from ticker.constants import Keys
from ticker.items import build_item, iso
from ticker.normalise import dedupe_key
from ticker.publish import Publisher

__all__ = ["ingest_item"]


async def ingest_item(ctx: dict[str, Any], item_id: str) -> str:
    """Publish a queued item once; a re-run (crash, retry) publishes nothing twice."""
    settings: Settings = ctx["settings"]
    keys: Keys = ctx["keys"]
    publisher: Publisher = ctx["publisher"]
    raw = await ctx["redis"].hgetall(keys.item(item_id))
    if not raw or b"submitted" not in raw:
        return "missing"
    data = orjson.loads(raw[b"submitted"])
    now = datetime.now(UTC)
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
    outcome = await publisher.emit(
        item_id=item_id,
        version=1,
        event_type="item.published",
        body={"item": item},
        item=item,
        status="published",
        live="add",
        edition=item["edition"],
        dedupe_key=None if force else dedupe_key(item["headline"], item["edition"]),
        dedupe_ttl=settings.dedupe_window_seconds,
        recent_window_ms=settings.dedupe_window_seconds * 1000,
    )
    if outcome.status in ("published", "duplicate"):
        entry = {"at": iso(now), "by": "worker", "action": outcome.status, "version": 1}
        if outcome.status == "duplicate":
            entry["duplicate_of"] = outcome.ref
        else:
            entry["event_id"] = outcome.ref
        await ctx["redis"].rpush(keys.history(item_id), orjson.dumps(entry))
    return outcome.status

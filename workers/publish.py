"""The atomic publish step (Lua): item + live set + stream + pub/sub, idempotent."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from redis.asyncio import Redis

from ticker.constants import Keys
from ticker.epoch import new_epoch
from ticker.lua import script as lua

__all__ = ["Outcome", "Publisher"]

LiveAction = Literal["add", "remove", "keep"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the step did: ``published`` (ref: event id), ``exists`` (done before),
    ``duplicate`` (ref: the original), ``wait`` (an earlier version is pending),
    ``stale`` (the draft changed under the job), ``cancelled``, ``changed`` (another
    worker published in the edition since the near-duplicate decision read it)."""

    status: str
    ref: str


class Publisher:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        maxlen: int,
        retention_seconds: int,
        sharded: bool = False,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.maxlen = maxlen
        self.retention_ms = retention_seconds * 1000
        self.command = "SPUBLISH" if sharded else "PUBLISH"
        self._script = redis.register_script(lua("publish"))

    async def emit(
        self,
        *,
        item_id: str,
        version: int,
        event_type: str,
        body: dict[str, Any],
        item: dict[str, Any] | None,
        status: str,
        live: LiveAction,
        edition: str,
        dedupe_key: str | None = None,
        dedupe_ttl: int = 0,
        recent_window_ms: int = 0,
        rev: str = "",
        facts: bytes | None = None,
        writer: str | None = None,
        others: int | None = None,
    ) -> Outcome:
        """One event, atomically. ``writer`` names the worker process in the edition's
        publish counts; ``others``: the other workers' count its decision knew (None:
        no decision to check), answered ``changed`` when it moved."""
        now_ms = int(time.time() * 1000)
        minid = f"{now_ms - self.retention_ms}-0" if self.retention_ms else "0"
        keys = [
            self.keys.item(item_id),
            self.keys.live,
            self.keys.events,
            self.keys.dedupe(dedupe_key) if dedupe_key else self.keys.none,
            self.keys.recent(edition) if recent_window_ms else self.keys.none,
            self.keys.epoch,
            self.keys.recent_count(edition) if recent_window_ms else self.keys.none,
            self.keys.recent_count_by(edition, writer) if writer else self.keys.none,
        ]
        args: list[Any] = [
            item_id,
            version,
            event_type,
            orjson.dumps(item) if item is not None else b"",
            orjson.dumps({"type": event_type, **body}),
            now_ms,
            self.keys.channel,
            self.maxlen,
            minid,
            max(dedupe_ttl, 1) if dedupe_key else 0,
            status,
            live,
            recent_window_ms,
            self.command,
            rev,
            new_epoch(),
            facts or b"",
            "" if others is None else others,
            "1" if writer else "0",
        ]
        status_b, ref = await self._script(keys=keys, args=args)
        return Outcome(status_b.decode(), ref.decode() if isinstance(ref, bytes) else str(ref))

    async def publish_new(self, item: dict[str, Any], **options: Any) -> Outcome:
        """Version 1 of an item: stored, added to the live set, appended and published.
        ``options`` are :meth:`emit`'s dedupe, revision, story facts and decision check
        arguments."""
        return await self.emit(
            item_id=item["id"],
            version=1,
            event_type="item.published",
            body={"item": item},
            item=item,
            status="published",
            live="add",
            edition=item["edition"],
            **options,
        )

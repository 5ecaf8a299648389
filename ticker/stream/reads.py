"""Redis reads for the streaming side: the snapshot and the resume range."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from ticker.constants import Keys
from ticker.epoch import new_epoch
from ticker.events import Event
from ticker.lua import script as lua

__all__ = ["Resume", "Snapshot", "Store"]

# More missed events than this and a fresh snapshot is cheaper than replaying them.
MAX_REPLAY = 5000


@dataclass(frozen=True, slots=True)
class Resume:
    """What a resume from a last id gives: the missed events, or a reset; with the
    data's current epoch ("" when Redis has none: its data is gone)."""

    reset: bool
    last_id: str
    events: tuple[Event, ...] = ()
    epoch: str = ""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The live items (oldest first), the stream id they reflect and the data's epoch."""

    last_id: str
    epoch: str
    items: list[dict[str, Any]]


class Store:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._snapshot = redis.register_script(lua("snapshot"))
        self._resume = redis.register_script(lua("resume"))

    async def snapshot(self) -> Snapshot:
        """The live items (oldest first), the stream id they reflect, and the epoch."""
        out = await self._snapshot(
            keys=[self.keys.live, self.keys.events, self.keys.epoch],
            args=[self.keys.item_prefix, new_epoch()],
        )
        return Snapshot(_s(out[0]), _s(out[1]), [orjson.loads(doc) for doc in out[2:]])

    async def resume(self, last_id: str, epoch: str = "") -> Resume:
        """The events after ``last_id`` of ``epoch`` ("": the current one), or a reset."""
        out = await self._resume(
            keys=[self.keys.events, self.keys.epoch], args=[last_id, MAX_REPLAY, "", epoch]
        )
        current = _s(out[2])
        if _s(out[0]) == "reset":
            return Resume(True, _s(out[1]), epoch=current)
        entries = out[3] if len(out) > 3 else []
        events = tuple(Event.from_entry(_s(eid), _fields(raw), current) for eid, raw in entries)
        return Resume(False, _s(out[1]), events, current)

    async def check(self, last_id: str, epoch: str = "") -> Resume:
        """Whether the stream still holds every event after ``last_id``: the same
        verdict as ``resume``, without reading the events (the hub has them)."""
        out = await self._resume(
            keys=[self.keys.events, self.keys.epoch], args=[last_id, MAX_REPLAY, "check", epoch]
        )
        return Resume(_s(out[0]) == "reset", _s(out[1]), epoch=_s(out[2]))

    async def item(self, item_id: str) -> dict[bytes, bytes]:
        return await self.redis.hgetall(self.keys.item(item_id))  # type: ignore[misc]


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _fields(raw: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(raw[::2], raw[1::2], strict=True))

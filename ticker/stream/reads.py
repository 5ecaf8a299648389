"""Redis reads for the streaming side: the snapshot and the resume range."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from ticker.constants import Keys
from ticker.events import Event
from ticker.lua import script as lua

__all__ = ["Resume", "Store"]

# More missed events than this and a fresh snapshot is cheaper than replaying them.
MAX_REPLAY = 5000


@dataclass(frozen=True, slots=True)
class Resume:
    """What a resume from a last id gives: the missed events, or a reset."""

    reset: bool
    last_id: str
    events: tuple[Event, ...] = ()


class Store:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._snapshot = redis.register_script(lua("snapshot"))
        self._resume = redis.register_script(lua("resume"))

    async def snapshot(self) -> tuple[str, list[dict[str, Any]]]:
        """The live items (oldest first) and the stream id they reflect."""
        out = await self._snapshot(
            keys=[self.keys.live, self.keys.events], args=[self.keys.item_prefix]
        )
        return _s(out[0]), [orjson.loads(doc) for doc in out[1:]]

    async def resume(self, last_id: str) -> Resume:
        out = await self._resume(keys=[self.keys.events], args=[last_id, MAX_REPLAY])
        if _s(out[0]) == "reset":
            return Resume(True, _s(out[1]))
        entries = out[2] if len(out) > 2 else []
        events = tuple(Event.from_entry(_s(eid), _fields(raw)) for eid, raw in entries)
        return Resume(False, _s(out[1]), events)

    async def check(self, last_id: str) -> Resume:
        """Whether the stream still holds every event after ``last_id``: the same
        verdict as ``resume``, without reading the events (the hub has them)."""
        out = await self._resume(keys=[self.keys.events], args=[last_id, MAX_REPLAY, "check"])
        return Resume(_s(out[0]) == "reset", _s(out[1]))

    async def item(self, item_id: str) -> dict[bytes, bytes]:
        return await self.redis.hgetall(self.keys.item(item_id))  # type: ignore[misc]


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _fields(raw: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(raw[::2], raw[1::2], strict=True))

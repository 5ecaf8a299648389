"""Webhook endpoints, their delivery queues and dead letters, in Redis.

Per endpoint (all under the deployment's hash tag, see ``Keys``): a hash with
its url, secret, filter and enabled flag; a list of event envelopes waiting to
be delivered, oldest first; a state hash (attempts on the head, failures); and
a list of dead letters. Fields are separate hash fields, so the worker's
automatic disabling and an admin's PATCH never overwrite each other.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import WatchError

from ticker.constants import WEBHOOK_DEAD_LETTERS_MAX, Keys
from ticker.events import ZERO_ID
from ticker.filters import Filter
from ticker.webhooks.killed import killed_items, text_item
from ticker.webhooks.signing import new_secret

__all__ = ["Endpoint", "WebhookStore", "filter_doc", "filter_of"]


def filter_doc(f: Filter) -> dict[str, Any]:
    return {
        "editions": sorted(f.editions),
        "categories": sorted(f.categories),
        "regions": sorted(f.regions),
        "max_urgency": f.max_urgency,
    }


def filter_of(doc: dict[str, Any]) -> Filter:
    return Filter(
        frozenset(doc.get("editions") or ()),
        frozenset(doc.get("categories") or ()),
        frozenset(doc.get("regions") or ()),
        int(doc.get("max_urgency") or 9),
    )


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str
    secret: str
    filter: Filter
    enabled: bool
    description: str
    created_at: str
    updated_at: str
    disabled_reason: str | None
    after: str  # the stream id at creation: older events are never sent here
    previous_secret: str = ""  # still signed with, until previous_until (rotation grace)
    previous_until: float = 0.0

    def signing_secrets(self, now: float) -> list[str]:
        if self.previous_secret and self.previous_until > now:
            return [self.secret, self.previous_secret]
        return [self.secret]

    @classmethod
    def from_hash(cls, endpoint_id: str, raw: dict[bytes, bytes]) -> Endpoint:
        def get(name: str, default: str = "") -> str:
            return raw.get(name.encode(), default.encode()).decode()

        return cls(
            id=endpoint_id,
            url=get("url"),
            secret=get("secret"),
            filter=filter_of(orjson.loads(get("filter", "{}"))),
            enabled=get("enabled") == "1",
            description=get("description"),
            created_at=get("created_at"),
            updated_at=get("updated_at"),
            disabled_reason=get("disabled_reason") or None,
            after=get("after", ZERO_ID),
            previous_secret=get("previous_secret"),
            previous_until=float(get("previous_until", "0") or 0),
        )

    def view(self) -> dict[str, Any]:
        """The admin API's view (never the secret)."""
        return {
            "id": self.id,
            "url": self.url,
            "filter": filter_doc(self.filter),
            "enabled": self.enabled,
            "description": self.description,
            "disabled_reason": self.disabled_reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


class WebhookStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis: Any = redis  # redis-py's stubs mix sync and async returns
        self.keys = keys

    async def stream_last_id(self) -> str:
        last = await self.redis.xrevrange(self.keys.events, count=1)
        return str(last[0][0].decode()) if last else ZERO_ID

    async def create(
        self, *, url: str, filter: Filter, enabled: bool, description: str, now: str
    ) -> Endpoint:
        endpoint_id = uuid.uuid4().hex
        after = await self.stream_last_id()
        # Start the dispatcher no later than this endpoint's birth if it never ran.
        await self.redis.set(self.keys.webhook_cursor, after, nx=True)
        fields = {
            "url": url,
            "secret": new_secret(),
            "filter": orjson.dumps(filter_doc(filter)),
            "enabled": "1" if enabled else "0",
            "description": description,
            "created_at": now,
            "updated_at": now,
            "after": after,
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.webhook(endpoint_id), mapping=fields)
            pipe.sadd(self.keys.webhooks, endpoint_id)
            await pipe.execute()
        got = await self.get(endpoint_id)
        assert got is not None
        return got

    async def get(self, endpoint_id: str) -> Endpoint | None:
        raw = await self.redis.hgetall(self.keys.webhook(endpoint_id))
        return Endpoint.from_hash(endpoint_id, raw) if raw.get(b"url") else None

    async def all(self) -> list[Endpoint]:
        ids = sorted(i.decode() for i in await self.redis.smembers(self.keys.webhooks))
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hgetall(self.keys.webhook(i))
            raws = await pipe.execute()
        return [Endpoint.from_hash(i, raw) for i, raw in zip(ids, raws, strict=True) if raw]

    async def update(self, endpoint_id: str, fields: dict[str, Any]) -> None:
        """Set fields of an existing endpoint (enabled as bool, filter as Filter)."""
        mapping: dict[str, Any] = {}
        for name, value in fields.items():
            if name == "enabled":
                mapping[name] = "1" if value else "0"
                if value:
                    mapping["disabled_reason"] = ""
            elif name == "filter":
                mapping[name] = orjson.dumps(filter_doc(value))
            else:
                mapping[name] = value
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.webhook(endpoint_id), mapping=mapping)
            if fields.get("enabled"):
                # A fresh start: the disabled streak no longer counts.
                pipe.hdel(self.keys.webhook_state(endpoint_id), "consecutive_dead", "failing_since")
            await pipe.execute()

    async def rotate_secret(self, endpoint_id: str, now: str, grace_seconds: int = 0) -> str:
        """A new secret; with a grace period, deliveries are signed with both meanwhile."""
        secret = new_secret()
        key = self.keys.webhook(endpoint_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            if grace_seconds > 0:
                old = await self.redis.hget(key, "secret")
                pipe.hset(
                    key,
                    mapping={
                        "previous_secret": old or b"",
                        "previous_until": time.time() + grace_seconds,
                    },
                )
            else:
                pipe.hdel(key, "previous_secret", "previous_until")
            pipe.hset(key, mapping={"secret": secret, "updated_at": now})
            await pipe.execute()
        return secret

    async def delete(self, endpoint_id: str) -> None:
        k = self.keys
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.srem(k.webhooks, endpoint_id)
            pipe.delete(
                k.webhook(endpoint_id),
                k.webhook_state(endpoint_id),
                k.webhook_queue(endpoint_id),
                k.webhook_dead(endpoint_id),
            )
            await pipe.execute()

    async def state(self, endpoint_id: str) -> dict[str, Any]:
        """Delivery state for the admin view: backlog, dead letters, last failure."""
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.llen(k.webhook_queue(endpoint_id))
            pipe.llen(k.webhook_dead(endpoint_id))
            pipe.hgetall(k.webhook_state(endpoint_id))
            queued, dead, raw = await pipe.execute()
        st = {key.decode(): v.decode() for key, v in raw.items()}
        return {
            "queued": queued,
            "dead_letters": dead,
            "attempts": int(st.get("attempts") or 0) if st.get("head") else 0,
            "consecutive_dead_letters": int(st.get("consecutive_dead") or 0),
            "failing_since": _float(st.get("failing_since")),
            "last_error": st.get("last_error") or None,
            "last_success_at": _float(st.get("last_success_at")),
            "next_attempt_at": _float(st.get("not_before")),
        }

    async def dead_letters(self, endpoint_id: str) -> list[dict[str, Any]]:
        raw = await self.redis.lrange(self.keys.webhook_dead(endpoint_id), 0, -1)
        records = [orjson.loads(r) for r in raw]
        killed = await killed_items(self.redis, self.keys, [r["payload"] for r in records])
        out = []
        for record in records:
            payload = record.pop("payload")
            if text_item(payload) not in killed:  # a killed item's text is not shown
                out.append({**record, "event": orjson.loads(payload)})
        return out

    async def replay(self, endpoint_id: str, event_id: str | None = None) -> list[str]:
        """Move dead letters (all, or the one for ``event_id``) back to the end of the
        queue, in their order; return the event ids moved."""
        dead_key, queue = self.keys.webhook_dead(endpoint_id), self.keys.webhook_queue(endpoint_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(dead_key)
                    raw = await pipe.lrange(dead_key, 0, -1)
                    records = [orjson.loads(r) for r in raw]
                    payloads = [r["payload"] for r in records]
                    killed = await killed_items(self.redis, self.keys, payloads)
                    chosen = [
                        (r, rec)
                        for r, rec in zip(raw, records, strict=True)
                        if event_id is None or rec["event_id"] == event_id
                    ]
                    pipe.multi()
                    for r, rec in chosen:
                        pipe.lrem(dead_key, 1, r)
                        if text_item(rec["payload"]) not in killed:  # else dropped
                            pipe.rpush(queue, rec["payload"])
                    await pipe.execute()
                    return [
                        rec["event_id"]
                        for _, rec in chosen
                        if text_item(rec["payload"]) not in killed
                    ]
                except WatchError:
                    continue

    async def add_dead_letter(
        self, pipe: Any, endpoint_id: str, payload: bytes, event_id: str, record: dict[str, Any]
    ) -> None:
        """Queue (on ``pipe``) a dead-letter record for ``payload``, keeping the newest N."""
        dead_key = self.keys.webhook_dead(endpoint_id)
        doc = {"event_id": event_id, **record, "payload": payload.decode()}
        pipe.rpush(dead_key, orjson.dumps(doc))
        pipe.ltrim(dead_key, -WEBHOOK_DEAD_LETTERS_MAX, -1)


def _float(value: str | None) -> float | None:
    return float(value) if value else None

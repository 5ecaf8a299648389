"""Accepting corrections, retractions and expiry: each change is a new version.

A change is recorded under optimistic locking (WATCH) and applied by a worker
in version order. Before an item is first published there is no version to
add: the draft is edited in place (its revision bumped) or cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import WatchError

from ticker.constants import Keys
from ticker.exceptions import ClientError, NotFoundError

__all__ = ["Accepted", "accept_change", "field_changes", "history_entry"]

# Statuses after which an item takes no more changes.
FINAL = frozenset(("retracted", "expired", "cancelled", "duplicate", "rejected"))
KIND_CLOSES = {"retract": "retracted", "expire": "expired"}


@dataclass(frozen=True, slots=True)
class Accepted:
    """A recorded change: a new version to apply, or an edited or cancelled draft."""

    version: int
    draft: dict[str, Any] | None = None  # set when an unpublished draft was edited
    rev: str = "0"
    cancelled: bool = False


def field_changes(raw: dict[bytes, bytes], patch: dict[str, Any]) -> dict[str, Any]:
    """Each patched field's value before and after, for the audit trail."""
    before = orjson.loads(raw.get(b"item") or raw.get(b"submitted") or b"{}")
    return {name: {"old": before.get(name), "new": value} for name, value in sorted(patch.items())}


def history_entry(action: str, by: str, at: str, **extra: Any) -> bytes:
    return orjson.dumps({"at": at, "by": by, "action": action, **extra})


async def accept_change(
    redis: Redis,
    keys: Keys,
    item_id: str,
    *,
    kind: str,
    by: str,
    at: str,
    patch: dict[str, Any] | None = None,
    reason: str | None = None,
    check: Callable[[dict[bytes, bytes]], None] | None = None,
) -> Accepted:
    """Record ``kind`` ("update", "retract" or "expire") for an item, atomically."""
    key = keys.item(item_id)
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(key)
                raw: dict[bytes, bytes] = await pipe.hgetall(key)  # type: ignore[misc]
                if not raw:
                    raise NotFoundError(f"no item {item_id!r}", "id")
                if check is not None:
                    check(raw)
                status = raw[b"status"].decode()
                closed = raw.get(b"closed", b"").decode() or (status if status in FINAL else None)
                if closed:
                    raise ClientError(
                        f"the item is {closed}; post a new item instead",
                        "id",
                        status=409,
                        code="conflict",
                    )
                published = int(raw.get(b"published_version", b"0"))
                version = int(raw[b"version"])
                pipe.multi()
                if published == 0 and version == 1:
                    result = _edit_draft(pipe, key, raw, kind, patch, reason)
                else:
                    result = Accepted(version + 1)
                    change = {"kind": kind, "by": by, "at": at, "patch": patch, "reason": reason}
                    fields: dict[str, Any] = {
                        "version": result.version,
                        f"change:{result.version}": orjson.dumps(change),
                    }
                    if kind in KIND_CLOSES:
                        fields["closed"] = KIND_CLOSES[kind]
                    pipe.hset(key, mapping=fields)
                action = {"update": "correction", "retract": "retraction", "expire": "expiry"}
                extra: dict[str, Any] = {"reason": reason} if reason else {}
                if patch:
                    extra["fields"] = sorted(patch)
                    extra["changes"] = field_changes(raw, patch)
                pipe.rpush(
                    keys.history(item_id),
                    history_entry(
                        f"{action[kind]} accepted" if not result.cancelled else "cancelled",
                        by,
                        at,
                        version=result.version,
                        **extra,
                    ),
                )
                await pipe.execute()
                return result
            except WatchError:
                continue


def _edit_draft(
    pipe: Any,
    key: str,
    raw: dict[bytes, bytes],
    kind: str,
    patch: dict[str, Any] | None,
    reason: str | None,
) -> Accepted:
    rev = str(int(raw.get(b"rev", b"0")) + 1)
    if kind == "update":
        draft = {**orjson.loads(raw[b"submitted"]), **(patch or {})}
        draft.pop("correction_note", None)  # nothing to correct before publication
        pipe.hset(key, mapping={"submitted": orjson.dumps(draft), "rev": rev})
        return Accepted(1, draft, rev)
    pipe.hset(
        key,
        mapping={"status": "cancelled", "closed": "cancelled", "rev": rev, "reason": reason or ""},
    )
    return Accepted(1, None, rev, cancelled=True)

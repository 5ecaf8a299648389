"""What the desk sees of an item (pure): status, the document, who sent it, why it closed.

Shared by the item view (GET /v1/items/{id}), the listing (GET /v1/items) and the desk feed.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["BOARD_STATUSES", "STATUSES", "desk_view", "extra_view"]

# Every status an item can have, in the order an item lives through them.
STATUSES = (
    "queued",
    "embargoed",
    "held",
    "published",
    "duplicate",
    "cancelled",
    "retracted",
    "expired",
    "rejected",
)
# What the desk board shows: everything still on, or waiting to go on, the ticker.
BOARD_STATUSES = ("queued", "embargoed", "held", "published")


def _text(raw: dict[bytes, bytes], name: str) -> str | None:
    v = raw.get(name.encode())
    return v.decode() if v is not None else None


def _closing_change(raw: dict[bytes, bytes]) -> dict[str, Any] | None:
    """The retraction or expiry change of a closed item, newest first."""
    version = int(raw.get(b"version", b"1"))
    for v in range(version, 1, -1):
        doc = raw.get(f"change:{v}".encode())
        if doc is None:
            continue
        change: dict[str, Any] = orjson.loads(doc)
        if change.get("kind") in ("retract", "expire"):
            return change
    return None


def extra_view(raw: dict[bytes, bytes]) -> dict[str, Any]:
    """Fields the desk needs beyond the intake's view: sender, creation, closing reason."""
    closed = _text(raw, "closed")
    retraction = None
    change = _closing_change(raw) if closed in ("retracted", "expired") else None
    if change is not None:
        retraction = {
            "kind": "retraction" if change["kind"] == "retract" else "expiry",
            "reason": change.get("reason"),
            "by": change.get("by"),
            "at": change.get("at"),
        }
    match = raw.get(b"match")
    return {
        "submitted_by": _text(raw, "principal"),
        "created_at": _text(raw, "created_at"),
        "closed": closed,
        "retraction": retraction,
        "match": orjson.loads(match) if match else None,
    }


def desk_view(item_id: str, raw: dict[bytes, bytes]) -> dict[str, Any]:
    """The whole view of a stored item, as the listing and the desk feed carry it."""
    doc = raw.get(b"item") or raw.get(b"submitted") or b"{}"
    return {
        "id": item_id,
        "status": _text(raw, "status"),
        "version": int(raw.get(b"version", b"1")),
        "published_version": int(raw.get(b"published_version", b"0")),
        "item": orjson.loads(doc),
        "event_id": _text(raw, "event_id"),
        "duplicate_of": _text(raw, "duplicate_of"),
        "reason": _text(raw, "reason"),
        "status_url": f"/v1/items/{item_id}",
        **extra_view(raw),
    }

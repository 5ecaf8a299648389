"""The public item document (pure), shaped after IPTC ninjs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ticker.config import Settings
from workers.normalise import display_headline, language_of

__all__ = ["PUBLIC_FIELDS", "build_item", "iso", "subject_of"]

PUBLIC_FIELDS = (
    "id",
    "version",
    "headline",
    "summary",
    "body",
    "url",
    "edition",
    "language",
    "categories",
    "regions",
    "tags",
    "urgency",
    "source",
    "byline",
    "pinned",
    "correction_note",
    "created_at",
    "published_at",
    "updated_at",
    "expires_at",
)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_item(
    item_id: str,
    data: dict[str, Any],
    *,
    version: int,
    created_at: str,
    published_at: str,
    now: datetime,
    settings: Settings,
) -> dict[str, Any]:
    """The item as readers get it: normalised headline, defaults filled in."""
    urgency = int(data.get("urgency", 5))
    expires_at = data.get("expires_at")
    if expires_at is None:
        expires_at = iso(now + timedelta(seconds=settings.expiry_seconds_by_urgency[urgency - 1]))
    edition = data["edition"]
    item: dict[str, Any] = {
        "id": item_id,
        "version": version,
        "headline": display_headline(data["headline"]),
        "summary": display_headline(data["summary"]) if data.get("summary") else None,
        "body": data.get("body"),
        "url": data.get("url"),
        "edition": edition,
        "language": data.get("language") or language_of(edition),
        "categories": list(data.get("categories") or ()),
        "regions": list(data.get("regions") or ()),
        "tags": [display_headline(t) for t in data.get("tags") or ()],
        "urgency": urgency,
        "source": _folded(data.get("source")),
        "byline": _folded(data.get("byline")),
        "pinned": bool(data.get("pinned", False)),
        "correction_note": _folded(data.get("correction_note")),
        "created_at": created_at,
        "published_at": published_at,
        "updated_at": iso(now),
        "expires_at": expires_at,
    }
    return item


def _folded(text: str | None) -> str | None:
    """A plain-text field in its display form (whitespace runs, U+2028/U+2029 included,
    folded to one space), as README "Text is data" promises for every such field."""
    return display_headline(text) if text else text


def subject_of(item: dict[str, Any]) -> dict[str, Any]:
    """The fields filters look at: what a retraction must carry to reach the right clients."""
    return {k: item[k] for k in ("id", "version", "edition", "categories", "regions", "urgency")}

"""Mobile push payloads (pure): stream events to FCM HTTP v1 and APNs requests.

- An item published, or updated while it still matches the bridge's filter,
  is an **alert**: title = the edition's BREAKING label, body = the headline.
  Its collapse id (FCM ``android.collapse_key`` and notification ``tag``,
  APNs ``apns-collapse-id``) is the item id, so a correction replaces the
  notification on the device instead of adding one.
- An item retracted or expired, or updated out of the filter, is a
  **withdrawal**: a data-only FCM message / APNs background push
  (``action: withdraw`` with the item id) so the app can remove it.
- Priority: urgency 1-3 is high (FCM ``HIGH``, APNs 10), else normal (5).
  Time to live: until the item's ``expires_at`` (FCM ``ttl``, ``apns-expiration``).
  Thread (APNs ``thread-id``): the item's first category, else its edition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ticker.editions import LABELS, title_of
from ticker.filters import Filter, Subject

__all__ = [
    "LABELS",
    "Push",
    "apns_request",
    "fcm_message",
    "plan",
    "title_of",
]

HIGH_URGENCY = 3  # urgency at or below this interrupts (high priority, sound)


@dataclass(frozen=True, slots=True)
class Push:
    """One notification to send for an event."""

    action: Literal["alert", "withdraw"]
    item: Mapping[str, Any]  # the item (a withdrawal may carry only its subject)
    event_id: str
    event_type: str

    @property
    def item_id(self) -> str:
        return str(self.item["id"])

    @property
    def high(self) -> bool:
        return int(self.item.get("urgency") or 9) <= HIGH_URGENCY


def plan(event_type: str, event_id: str, data: Mapping[str, Any], f: Filter) -> list[Push]:
    """What to send for one stream event (snapshots and resets send nothing here)."""
    item = data.get("item")
    if not item:
        return []
    if event_type == "item.published":
        return [Push("alert", item, event_id, event_type)]
    if event_type == "item.updated":
        action: Literal["alert", "withdraw"] = (
            "alert" if f.matches(Subject.of(item)) else "withdraw"
        )
        return [Push(action, item, event_id, event_type)]
    if event_type in ("item.retracted", "item.expired"):
        return [Push("withdraw", item, event_id, event_type)]
    return []


def _expires(item: Mapping[str, Any]) -> datetime | None:
    raw = item.get("expires_at")
    if not raw:
        return None
    return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).astimezone(UTC)


def ttl_seconds(item: Mapping[str, Any], now: datetime) -> int:
    """Seconds until the item expires (0 if it already has); 4 weeks if it never does."""
    expires = _expires(item)
    if expires is None:
        return 28 * 24 * 3600
    return max(0, int((expires - now).total_seconds()))


def _thread(item: Mapping[str, Any]) -> str:
    categories = item.get("categories") or []
    return str(categories[0]) if categories else str(item.get("edition") or "ticker")


def _data(push: Push) -> dict[str, str]:
    """FCM data values must be strings."""
    out = {
        "action": push.action,
        "type": push.event_type,
        "event_id": push.event_id,
        "item_id": push.item_id,
        "version": str(push.item.get("version", "")),
        "edition": str(push.item.get("edition", "")),
    }
    if push.item.get("url"):
        out["url"] = str(push.item["url"])
    return out


def fcm_message(push: Push, *, topic: str, now: datetime) -> dict[str, Any]:
    """The body of ``POST /v1/projects/{project}/messages:send`` (FCM HTTP v1)."""
    message: dict[str, Any] = {"topic": topic, "data": _data(push)}
    if push.action == "withdraw":
        message["android"] = {"priority": "NORMAL", "collapse_key": push.item_id}
        return {"message": message}
    ttl = ttl_seconds(push.item, now)
    message["notification"] = {"title": title_of(push.item), "body": push.item["headline"]}
    message["android"] = {
        "collapse_key": push.item_id,
        "priority": "HIGH" if push.high else "NORMAL",
        "ttl": f"{ttl}s",
        "notification": {"tag": push.item_id},
    }
    return {"message": message}


def apns_request(push: Push, *, topic: str, now: datetime) -> tuple[dict[str, str], dict[str, Any]]:
    """Headers and JSON body of ``POST /3/device/{token}`` (APNs)."""
    data = {k: v for k, v in _data(push).items() if k != "version"}
    if push.action == "withdraw":
        # Background pushes must be priority 5 and carry no alert.
        headers = {"apns-push-type": "background", "apns-priority": "5", "apns-topic": topic}
        return headers, {"aps": {"content-available": 1}, **data}
    expires = _expires(push.item)
    headers = {
        "apns-push-type": "alert",
        "apns-priority": "10" if push.high else "5",
        "apns-topic": topic,
        "apns-collapse-id": push.item_id,
        "apns-expiration": str(int(expires.timestamp()) if expires else 0),
    }
    aps: dict[str, Any] = {
        "alert": {"title": title_of(push.item), "body": push.item["headline"]},
        "thread-id": _thread(push.item),
    }
    if push.high:
        aps["sound"] = "default"
        aps["interruption-level"] = "time-sensitive"
    return headers, {"aps": aps, **data}

"""Partner feeds (pure): the live ticker as RSS 2.0, Atom 1.0 and JSON Feed 1.1.

A feed is the edition's snapshot seen through a stream filter: the live items
with corrections applied, retracted and expired items gone, newest first.
RSS and Atom are built by feedgen; JSON Feed is plain JSON (it needs no
library). Headlines are text: feedgen escapes them as XML text, and where a
feed carries HTML (the summary's ``content_html`` and Atom/RSS descriptions)
the text is HTML-escaped first and wrapped with its direction.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import orjson
from feedgen.feed import FeedGenerator

from ticker.editions import direction_of, language_of, title_of
from ticker.filters import Filter, Subject

__all__ = ["FORMATS", "MAX_ITEMS", "Feed", "build_feed", "feed_items", "http_date"]

MAX_ITEMS = 100  # a feed carries at most the newest this many items
FORMATS: dict[str, str] = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class Feed:
    """A rendered feed with its validators."""

    body: bytes
    content_type: str
    etag: str  # strong: a hash of the body
    last_modified: datetime | None  # the newest item's last change


def feed_items(items: Iterable[Mapping[str, Any]], edition: str, f: Filter) -> list[dict[str, Any]]:
    """The edition's items that pass the filter, newest publication first."""
    chosen = [
        dict(item)
        for item in items
        if item.get("edition") == edition and f.matches(Subject.of(item))
    ]
    chosen.sort(key=lambda i: (str(i.get("published_at") or ""), str(i["id"])), reverse=True)
    return chosen[:MAX_ITEMS]


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _html(text: str, edition: str) -> str:
    """Plain text as an HTML fragment that keeps its direction; never markup."""
    return f'<p dir="{direction_of(edition)}">{html.escape(text)}</p>'


def _summary(item: Mapping[str, Any]) -> str:
    parts = [str(item.get("summary") or item["headline"])]
    if item.get("correction_note"):
        parts.append(f"({item['correction_note']})")
    return " ".join(parts)


def build_feed(
    fmt: str,
    edition: str,
    items: list[dict[str, Any]],
    *,
    feed_url: str,
    home_url: str,
) -> Feed:
    """Render ``items`` (from :func:`feed_items`) as ``fmt`` (a key of FORMATS)."""
    language = language_of(edition)
    title = f"{title_of({'edition': edition})} · {edition}"
    changed = [t for t in (_when(i.get("updated_at")) for i in items) if t is not None]
    newest = max(changed) if changed else None
    if fmt == "json":
        body = _json_feed(edition, language, title, items, feed_url, home_url)
    else:
        body = _xml_feed(fmt, edition, language, title, items, feed_url, home_url, newest)
    return Feed(body, FORMATS[fmt], '"' + hashlib.sha256(body).hexdigest()[:32] + '"', newest)


def _xml_feed(
    fmt: str,
    edition: str,
    language: str,
    title: str,
    items: list[dict[str, Any]],
    feed_url: str,
    home_url: str,
    newest: datetime | None,
) -> bytes:
    fg = FeedGenerator()
    fg.id(feed_url)
    fg.title(title)
    fg.link(href=home_url, rel="alternate")
    fg.link(href=feed_url, rel="self")
    fg.language(language)
    fg.description(f"{title}: live breaking news")
    fg.generator("Ticker")
    # A fixed date when empty, so an unchanged empty feed keeps its ETag.
    fg.updated(newest or datetime(2000, 1, 1, tzinfo=UTC))
    fg.lastBuildDate(newest or datetime(2000, 1, 1, tzinfo=UTC))
    # feedgen lists entries newest-first when each is added at the front.
    for item in reversed(items):
        fe = fg.add_entry()
        fe.id(f"urn:ticker:item:{item['id']}")
        fe.guid(f"urn:ticker:item:{item['id']}", permalink=False)
        fe.title(str(item["headline"]))
        fe.link(href=str(item.get("url") or f"{home_url}#{item['id']}"))
        published = _when(item.get("published_at"))
        updated = _when(item.get("updated_at")) or published
        if published:
            fe.published(published)
        if updated:
            fe.updated(updated)
        fe.description(_html(_summary(item), edition))
        for category in item.get("categories") or ():
            fe.category(term=str(category))
        if item.get("source"):
            fe.author(name=str(item["source"]))
    out: bytes = fg.rss_str(pretty=False) if fmt == "rss" else fg.atom_str(pretty=False)
    return out


def _json_feed(
    edition: str,
    language: str,
    title: str,
    items: list[dict[str, Any]],
    feed_url: str,
    home_url: str,
) -> bytes:
    entries = []
    for item in items:
        entry: dict[str, Any] = {
            "id": str(item["id"]),
            "url": item.get("url") or f"{home_url}#{item['id']}",
            "title": item["headline"],
            "content_text": _summary(item),
            "content_html": _html(_summary(item), edition),
            "date_published": item.get("published_at"),
            "date_modified": item.get("updated_at"),
            "tags": list(item.get("categories") or ()),
            "language": item.get("language") or language,
            "_ticker": {
                "version": item.get("version"),
                "urgency": item.get("urgency"),
                "regions": list(item.get("regions") or ()),
                "expires_at": item.get("expires_at"),
            },
        }
        if item.get("source"):
            entry["authors"] = [{"name": item["source"]}]
        entries.append({k: v for k, v in entry.items() if v is not None})
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "home_page_url": home_url,
        "feed_url": feed_url,
        "language": language,
        "items": entries,
    }
    return orjson.dumps(doc)


def http_date(t: datetime) -> str:
    return format_datetime(t.astimezone(UTC).replace(microsecond=0), usegmt=True)

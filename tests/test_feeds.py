"""Partner feeds: RSS, Atom and JSON Feed per edition.

RSS and Atom are read back by feedparser, as a feed reader would; feedparser 6
has no JSON Feed parser, so JSON Feed is checked against the 1.1 spec's rules.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import feedparser
import orjson

from tests.support.helpers import wait_for
from tests.support.stack import Stack, auth


def parse(body: bytes, content_type: str = "") -> Any:
    """RSS and Atom through feedparser; JSON Feed 1.1 checked, then read alike."""
    if not content_type.startswith("application/feed+json"):
        return feedparser.parse(body)
    doc = orjson.loads(body)
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(doc["title"], str) and isinstance(doc["items"], list)
    for item in doc["items"]:
        assert isinstance(item["id"], str)  # required, a string
        assert "content_text" in item or "content_html" in item  # one is required
    entries = [
        SimpleNamespace(
            id=i["id"], title=i.get("title"), link=i.get("url"), summary=i["content_html"]
        )
        for i in doc["items"]
    ]
    return SimpleNamespace(
        version="json11", feed={"language": doc.get("language")}, entries=entries
    )


async def _feed(stack: Stack, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    r = await stack.http.get(path, headers=headers)
    return r.status_code, dict(r.headers), r.content


async def test_rss_atom_and_json_carry_the_live_items(stack: Stack) -> None:
    """Each format lists the edition's live items newest first, with title, link and category."""
    first = await stack.publish(
        "Quake hits Lima", url="https://news.example/lima", categories=["world"]
    )
    second = await stack.publish("Rates held at 4%", categories=["economy"])
    await stack.publish("Sismo en Lima", edition="es")
    for fmt in ("rss", "atom"):
        status, headers, body = await _feed(stack, f"/v1/feeds/en.{fmt}")
        assert status == 200
        assert headers["content-type"].startswith(f"application/{fmt}+xml")
        parsed = feedparser.parse(body)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert [e.title for e in parsed.entries] == ["Rates held at 4%", "Quake hits Lima"]
        assert parsed.entries[1].link == "https://news.example/lima"
        assert parsed.entries[1].tags[0].term == "world"
        assert parsed.feed.language == "en"
    status, headers, body = await _feed(stack, "/v1/feeds/en.json")
    assert headers["content-type"].startswith("application/feed+json")
    parsed = parse(body, headers["content-type"])
    assert parsed.version == "json11"
    assert [e.id for e in parsed.entries] == [second["id"], first["id"]]


async def test_feed_applies_the_stream_filters(stack: Stack) -> None:
    """category, region and max_urgency narrow a feed as they narrow a stream."""
    await stack.publish("Economy item", categories=["economy"], urgency=4)
    await stack.publish("Politics flash", categories=["politics"], urgency=1)
    _, _, body = await _feed(stack, "/v1/feeds/en.rss?category=politics&max_urgency=2")
    assert [e.title for e in parse(body).entries] == ["Politics flash"]


async def test_corrections_show_and_retractions_leave(stack: Stack) -> None:
    """A feed shows an item's latest version and drops a retracted item."""
    kept = await stack.publish("Two killed in Jenin raid")
    gone = await stack.publish("Minister resigns")
    r = await stack.http.patch(
        f"/v1/items/{kept['id']}",
        json={"headline": "Three killed in Jenin raid", "correction_note": "Updates toll"},
        headers=auth(),
    )
    assert r.status_code == 202
    r = await stack.http.request(
        "DELETE", f"/v1/items/{gone['id']}", json={"reason": "Not confirmed"}, headers=auth()
    )
    assert r.status_code == 202

    async def settled() -> bool:
        _, _, body = await _feed(stack, "/v1/feeds/en.atom")
        titles = [e.title for e in parse(body).entries]
        return titles == ["Three killed in Jenin raid"]

    await wait_for(settled, 10, what="the correction in and the retraction out of the feed")
    _, headers, body = await _feed(stack, "/v1/feeds/en.json")
    (entry,) = parse(body, headers["content-type"]).entries
    assert "Updates toll" in entry.summary


async def test_arabic_feed_has_language_and_direction(stack: Stack) -> None:
    """The Arabic feed declares its language and wraps its HTML text right-to-left."""
    await stack.publish("مقتل ثلاثة في غارة على جنين", edition="ar")
    for fmt in ("rss", "atom", "json"):
        _, headers, body = await _feed(stack, f"/v1/feeds/ar.{fmt}")
        parsed = parse(body, headers["content-type"])
        assert parsed.feed.get("language") == "ar"
        (entry,) = parsed.entries
        assert entry.title == "مقتل ثلاثة في غارة على جنين"
        assert 'dir="rtl"' in entry.summary


async def test_etag_and_last_modified_answer_304(stack: Stack) -> None:
    """A repeat poll with the ETag or the Last-Modified date gets 304 until the feed changes."""
    await stack.publish("Markets fall")
    status, headers, _ = await _feed(stack, "/v1/feeds/en.rss")
    assert status == 200 and headers["etag"] and headers["last-modified"]
    status, _, body = await _feed(stack, "/v1/feeds/en.rss", **{"If-None-Match": headers["etag"]})
    assert status == 304 and body == b""
    modified = {"If-Modified-Since": headers["last-modified"]}
    status, _, _ = await _feed(stack, "/v1/feeds/en.rss", **modified)
    assert status == 304
    await stack.publish("Markets recover")
    status, later, _ = await _feed(stack, "/v1/feeds/en.rss", **{"If-None-Match": headers["etag"]})
    assert status == 200 and later["etag"] != headers["etag"]


async def test_headline_markup_stays_text(stack: Stack) -> None:
    """Markup in a headline reaches a feed reader as text, never as elements."""
    await stack.publish("<script>alert(1)</script> & <b>bold</b> claims")
    _, _, body = await _feed(stack, "/v1/feeds/en.rss")
    assert b"<script>" not in body and b"<b>" not in body
    (entry,) = parse(body).entries
    assert entry.title == "<script>alert(1)</script> & <b>bold</b> claims"
    # Where a feed carries HTML, the text is escaped inside it.
    _, headers, body = await _feed(stack, "/v1/feeds/en.json")
    (entry,) = parse(body, headers["content-type"]).entries
    assert "<script>" not in entry.summary and "&lt;script&gt;" in entry.summary


async def test_bad_feed_requests_are_4xx_naming_the_field(stack: Stack) -> None:
    """An unknown edition or format is a 404 and a bad filter a 400, each naming its field."""
    for path, status, field in [
        ("/v1/feeds/xx.rss", 404, "edition"),
        ("/v1/feeds/en.pdf", 404, "format"),
        ("/v1/feeds/en.rss?max_urgency=0", 400, "max_urgency"),
        ("/v1/feeds/en.rss?category=Bad%20Slug", 400, "category"),
    ]:
        r = await stack.http.get(path)
        assert r.status_code == status, path
        assert r.json()["error"]["field"] == field

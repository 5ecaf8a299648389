"""The <breaking-ticker> element against a scripted stream: events, safety, a11y, resume."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import PageWatch, open_page
from .fake_stream import FakeStream, make_item, serve_fake_stream, stamp

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"
Fake = tuple[FakeStream, str]
# Reads the widget's shadow DOM: the visible item, the bar's state and the label as displayed.
STATE_JS = """(sel) => {
  const el = document.querySelector(sel);
  const root = el.shadowRoot;
  const bar = root.querySelector('.bar');
  const shown = [...root.querySelectorAll('li.item')].find(li => !li.hidden);
  return {
    ids: el.items.map(i => i.id),
    headlines: el.items.map(i => i.headline),
    shownId: shown ? shown.dataset.id : null,
    shownText: shown ? shown.querySelector('.headline').textContent : null,
    label: [...root.querySelectorAll('.label span')]
      .find(s => getComputedStyle(s).display !== 'none').textContent,
    dir: getComputedStyle(bar).direction,
    urgent: bar.classList.contains('urgent'),
    hidden: bar.hidden,
    status: el.status,
    lastEventId: el.lastEventId,
  };
}"""


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeStream, str]]:
    stream = FakeStream()
    async with serve_fake_stream(stream) as base:
        yield stream, base


async def state(page: Any, selector: str = "#ticker-en") -> dict[str, Any]:
    return await page.evaluate(STATE_JS, selector)


async def wait_items(page: Any, selector: str, expected: list[str], ms: float = 2000) -> None:
    """Wait until the element's item ids are exactly `expected` (newest first)."""
    await page.wait_for_function(
        "([sel, ids]) => JSON.stringify(document.querySelector(sel).items.map(i => i.id))"
        " === JSON.stringify(ids)",
        arg=[selector, expected],
        timeout=ms,
    )


async def open_demo(page: Any, base: str, fake: FakeStream, streams: int = 3) -> None:
    """Open the demo page and wait until every ticker on it has applied its snapshot."""
    await page.goto(base + "/")
    await fake.wait_clients(streams)
    await page.wait_for_function(
        "() => [...document.querySelectorAll('breaking-ticker')].every(t => t.lastEventId)"
    )


async def test_snapshot_renders_newest_first(page: Any, fake: Fake, watch: PageWatch) -> None:
    """A new widget shows the snapshot newest first, with the localised label and relative time."""
    stream, base = fake
    stream.send("item.published", item=make_item("a", "Older item", published_at=stamp(-3600)))
    stream.send("item.published", item=make_item("b", "Newer item", published_at=stamp(-1800)))
    await open_demo(page, base, stream)
    await wait_items(page, "#ticker-en", ["b", "a"])
    s = await state(page)
    assert s["shownText"] == "Newer item"
    assert s["label"] == "BREAKING"
    assert s["dir"] == "ltr"
    assert s["lastEventId"] == "2-0"
    assert len(stream.requests) == 3  # one stream per widget
    assert watch.errors == [] and watch.csp_violations == []


async def test_published_item_shows_and_is_announced(page: Any, fake: Fake) -> None:
    """A new item becomes the visible headline, announced politely (urgency 1: assertively)."""
    stream, base = fake
    await open_demo(page, base, stream)
    await page.evaluate(
        "() => { window.updates = []; document.addEventListener('ticker:update',"
        " e => window.updates.push([e.target.id, e.detail.type, e.detail.items.length])); }"
    )
    stream.send("item.published", item=make_item("n1", "Routine update", urgency=5))
    await wait_items(page, "#ticker-en", ["n1"])
    s = await state(page)
    assert s["shownText"] == "Routine update" and not s["urgent"]
    assert await page.evaluate("() => window.updates") == [["ticker-en", "item.published", 1]]
    await page.wait_for_function(
        "() => document.querySelector('#ticker-en').shadowRoot"
        ".querySelector('[aria-live=polite]').textContent === 'BREAKING: Routine update'"
    )
    stream.send(
        "item.published",
        item=make_item("n2", "Flash item", urgency=1, published_at=stamp(5)),
    )
    await wait_items(page, "#ticker-en", ["n2", "n1"])
    s = await state(page)
    assert s["shownId"] == "n2" and s["urgent"]
    await page.wait_for_function(
        "() => document.querySelector('#ticker-en').shadowRoot"
        ".querySelector('[aria-live=assertive]').textContent === 'BREAKING: Flash item'"
    )


async def test_update_replaces_in_place_and_removals_apply(page: Any, fake: Fake) -> None:
    """Updates replace in place; retracted and expired remove; reset clears until the snapshot."""
    stream, base = fake
    stream.send("item.published", item=make_item("a", "First", published_at=stamp(-3600)))
    stream.send("item.published", item=make_item("b", "Second", published_at=stamp(-3000)))
    stream.send("item.published", item=make_item("c", "Third", published_at=stamp(-2400)))
    await open_demo(page, base, stream)
    await wait_items(page, "#ticker-en", ["c", "b", "a"])
    corrected = make_item("b", "Second, corrected", version=2, published_at=stamp(-3000))
    stream.send("item.updated", item=corrected)
    await page.wait_for_function(
        "() => document.querySelector('#ticker-en').items[1].headline === 'Second, corrected'"
    )
    assert (await state(page))["ids"] == ["c", "b", "a"]
    # A stale version arriving late must not undo the correction.
    stream.send("item.updated", item=make_item("b", "Second", version=1))
    stream.send("item.retracted", item={"id": "c", "edition": "en", "version": 2}, reason="wrong")
    await wait_items(page, "#ticker-en", ["b", "a"])
    assert (await state(page))["headlines"] == ["Second, corrected", "First"]
    stream.send("item.expired", item={"id": "a", "edition": "en", "version": 1}, reason="age")
    await wait_items(page, "#ticker-en", ["b"])
    stream.send("reset", reason="retention")
    await wait_items(page, "#ticker-en", [])
    stream.send("snapshot", items=[make_item("z", "Fresh state")])
    await wait_items(page, "#ticker-en", ["z"])


async def test_markup_in_headline_is_text(page: Any, fake: Fake, watch: PageWatch) -> None:
    """A headline made of markup shows as literal text, creates no element and runs nothing."""
    stream, base = fake
    await open_demo(page, base, stream)
    stream.send("item.published", item=make_item("x", XSS, url="javascript:alert(2)"))
    await wait_items(page, "#ticker-en", ["x"])
    s = await state(page)
    assert s["shownText"] == XSS
    counts = await page.evaluate(
        """() => {
          const root = document.querySelector('#ticker-en').shadowRoot;
          const imgs = root.querySelectorAll('img').length
            + document.querySelectorAll('img').length;
          return {img: imgs,
                  links: root.querySelectorAll('a').length};
        }"""
    )
    assert counts == {"img": 0, "links": 0}  # no element, and no javascript: link
    assert watch.dialogs == [] and watch.errors == []


async def test_links_are_http_only_and_keyboard_reachable(page: Any, fake: Fake) -> None:
    """An https url becomes a link that Tab reaches, and focus pauses the rotation."""
    stream, base = fake
    stream.send("item.published", item=make_item("a", "Older", published_at=stamp(-3600)))
    stream.send(
        "item.published",
        item=make_item(
            "l",
            "Linked story",
            url="https://news.example/story",
            published_at=stamp(-1800),
        ),
    )
    await page.goto(base + "/")
    await stream.wait_clients(3)
    await wait_items(page, "#ticker-en", ["l", "a"])
    for _ in range(10):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "() => { const a = document.activeElement; const r = a && a.shadowRoot;"
            " const f = r && r.activeElement;"
            " return f ? [a.id, f.tagName, f.getAttribute('href')] : null; }"
        )
        if focused and focused[1] == "A":
            break
    assert focused == ["ticker-en", "A", "https://news.example/story"]
    assert await page.evaluate("document.querySelector('#ticker-en').paused") is True


async def test_arabic_bar_is_right_to_left(page: Any, fake: Fake, artifacts: Path) -> None:
    """The Arabic edition lays out right to left, isolates each headline and speaks Arabic."""
    stream, base = fake
    stream.send(
        "item.published",
        item=make_item(
            "ar1",
            "مقتل 60 على الأقل في غرق سفينة قبالة اليمن: المنظمة الدولية للهجرة",
            edition="ar",
            urgency=2,
        ),
    )
    stream.send(
        "item.published", item=make_item("en1", "At least 60 dead in shipwreck off Yemen: IOM")
    )
    await open_demo(page, base, stream)
    await wait_items(page, "#ticker-ar", ["ar1"])
    await wait_items(page, "#ticker-en", ["en1"])
    s = await state(page, "#ticker-ar")
    assert s["dir"] == "rtl" and s["label"] == "عاجل" and s["urgent"]
    headline = await page.evaluate(
        """() => { const root = document.querySelector('#ticker-ar').shadowRoot;
                   const h = root.querySelector('.headline');
                   const cs = getComputedStyle(h);
                   return [h.getAttribute('dir'), cs.unicodeBidi, cs.direction]; }"""
    )
    assert headline == ["auto", "isolate", "rtl"]
    await page.locator("body").screenshot(path=str(artifacts / "demo-page.png"))
    await page.locator("#ticker-en").screenshot(path=str(artifacts / "widget-en.png"))
    await page.locator("#ticker-ar").screenshot(path=str(artifacts / "widget-ar.png"))
    # On a phone the label shortens and the controls fold away, but the time stays.
    await page.set_viewport_size({"width": 390, "height": 700})
    time_display = await page.evaluate(
        "() => getComputedStyle(document.querySelector('#ticker-ar').shadowRoot"
        ".querySelector('.time')).display"
    )
    assert time_display != "none"
    await page.screenshot(path=str(artifacts / "demo-page-narrow.png"))


async def test_reduced_motion_and_hover(browser: Any, fake: Fake, watch: PageWatch) -> None:
    """Under prefers-reduced-motion nothing animates; hovering the bar pauses the rotation."""
    stream, base = fake
    page = await open_page(browser, watch, reduced_motion="reduce")
    stream.send("item.published", item=make_item("u", "Urgent", urgency=1))
    await open_demo(page, base, stream)
    await wait_items(page, "#ticker-en", ["u"])
    animations = await page.evaluate(
        """() => { const r = document.querySelector('#ticker-en').shadowRoot;
                   return [getComputedStyle(r.querySelector('.label')).animationName,
                           getComputedStyle(r.querySelector('li.item')).animationName]; }"""
    )
    assert animations == ["none", "none"]
    assert await page.evaluate("document.querySelector('#ticker-en').paused") is False
    await page.locator("#ticker-en").hover()
    assert await page.evaluate("document.querySelector('#ticker-en').paused") is True
    await page.context.close()


async def test_host_css_cannot_break_the_bar(browser: Any, fake: Fake, watch: PageWatch) -> None:
    """Hostile page styles do not reach inside the shadow root; custom properties do."""
    stream, base = fake
    page = await open_page(browser, watch, bypass_csp=True)
    stream.send("item.published", item=make_item("h", "Styled headline"))
    await open_demo(page, base, stream)
    await wait_items(page, "#ticker-en", ["h"])
    await page.add_style_tag(
        content="* { color: rgb(0, 255, 0) !important; font-size: 40px !important;"
        " text-transform: lowercase !important; } span, li, a { display: none !important; }"
        " #ticker-en { --ticker-bg: rgb(1, 2, 3); }"
    )
    styles = await page.evaluate(
        """() => { const r = document.querySelector('#ticker-en').shadowRoot;
                   const h = getComputedStyle(r.querySelector('.headline'));
                   const bar = getComputedStyle(r.querySelector('.bar'));
                   return [h.display, h.color, h.fontSize, h.textTransform,
                           bar.backgroundColor]; }"""
    )
    assert styles == ["block", "rgb(255, 255, 255)", "15px", "none", "rgb(1, 2, 3)"]
    await page.context.close()


async def test_resumes_with_last_event_id_after_the_stream_fails(page: Any, fake: Fake) -> None:
    """When the stream is refused, the widget retries with last_event_id and catches up."""
    stream, base = fake
    stream.send("item.published", item=make_item("a", "Before the outage"))
    await open_demo(page, base, stream)
    await wait_items(page, "#ticker-en", ["a"])
    # An HTTP error ends EventSource for good: only the widget's own backoff can bring it back.
    stream.refuse["en"] = 2
    stream.drop_clients()
    await page.wait_for_function(
        "() => document.querySelector('#ticker-en').status === 'reconnecting'"
    )
    stream.send(
        "item.published",
        item=make_item("b", "During the outage", published_at=stamp(5)),
    )
    await wait_items(page, "#ticker-en", ["b", "a"], ms=15000)
    resumed = [r for r in stream.requests if r.query.get("edition") == "en"][-1]
    assert stream.refuse["en"] == 0  # both refusals were met: EventSource alone gives up on 503
    assert resumed.query.get("last_event_id") == "1-0"


async def test_filter_attributes_become_query_params(page: Any, fake: Fake) -> None:
    """The element's filter attributes are sent as the stream's query parameters."""
    stream, base = fake
    await open_demo(page, base, stream)
    await page.evaluate(
        """() => { const t = document.createElement('breaking-ticker');
                   t.id = 'filtered'; t.setAttribute('edition', 'en');
                   t.setAttribute('categories', 'politics, economy');
                   t.setAttribute('regions', 'mena');
                   t.setAttribute('max-urgency', '3'); document.body.appendChild(t); }"""
    )
    await stream.wait_clients(4)
    query = stream.requests[-1].query
    assert query == {
        "edition": "en",
        "category": "politics,economy",
        "region": "mena",
        "max_urgency": "3",
    }

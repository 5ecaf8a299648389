"""The widget's editorial rules against a scripted stream: priority order and dwell, flashes
that interrupt, the localised UPDATED marker, retractions, host events, reduced motion, and the
folded controls on a phone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.widget_probe import set_attrs

from .conftest import PageWatch, open_page
from .fake_stream import FakeStream, make_item, serve_fake_stream, stamp

pytestmark = pytest.mark.browser

Fake = tuple[FakeStream, str]
SHOWN_JS = """(sel) => {
  const root = document.querySelector(sel).shadowRoot;
  return [...root.querySelectorAll('li.item')].filter(li => !li.hidden).map(li => li.dataset.id);
}"""
# Records every custom event the host page can listen to, in order.
LISTEN_JS = """() => { window.seen = [];
  for (const name of ['ticker-item', 'ticker-update', 'ticker-retract', 'ticker-state'])
    document.addEventListener(name, e => window.seen.push([e.target.id, name,
      e.detail.item ? e.detail.item.id : (e.detail.id || e.detail.status || null)])); }"""


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    stream = FakeStream()
    async with serve_fake_stream(stream) as base:
        yield stream, base


async def open_demo(page: Any, base: str, stream: FakeStream) -> None:
    await page.goto(base + "/")
    await stream.wait_clients(3)
    await page.wait_for_function(
        "() => [...document.querySelectorAll('breaking-ticker')].every(t => t.lastEventId)"
    )


async def shown(page: Any, sel: str = "#ticker-en") -> list[str]:
    return await page.evaluate(SHOWN_JS, sel)  # type: ignore[no-any-return]


async def wait_shown(page: Any, sel: str, ids: list[str], ms: float = 2000) -> None:
    """Wait until exactly these item ids are on screen (a crawl may show several)."""
    await page.wait_for_function(
        f"([sel, ids]) => JSON.stringify(({SHOWN_JS})(sel)) === JSON.stringify(ids)",
        arg=[sel, ids],
        timeout=ms,
    )


def item(item_id: str, age: int, headline: str | None = None, **fields: Any) -> dict[str, Any]:
    text = headline or f"Headline {item_id}"
    return make_item(item_id, text, published_at=stamp(-age), **fields)


async def test_priority_items_stay_in_front(page: Any, fake: Fake) -> None:
    """Pinned and urgency 1-2 items lead the order and the crawl cycle, newer routine items
    follow, and a routine arrival does not push a priority item off the rotating bar."""
    stream, base = fake
    stream.send("item.published", item=item("pin", 3000, pinned=True, urgency=4))
    stream.send("item.published", item=item("urg", 2000, urgency=2))
    stream.send("item.published", item=item("r1", 600))
    stream.send("item.published", item=item("r2", 300))
    await open_demo(page, base, stream)
    await set_attrs(page, "#ticker-en", mode="rotate", dwell="60", priority_dwell="60")
    assert await page.evaluate("document.querySelector('#ticker-en').order") == [
        "pin",
        "urg",
        "r2",
        "r1",
    ]
    cycle = await page.evaluate("document.querySelector('#ticker-en').cycle")
    assert cycle == ["pin", "urg", "r2", "pin", "urg", "r1"]  # priority-passes=2
    await wait_shown(page, "#ticker-en", ["pin"])
    stream.send("item.published", item=item("r3", 0))
    await page.wait_for_function("() => document.querySelector('#ticker-en').items.length === 5")
    assert await shown(page) == ["pin"]
    await set_attrs(page, "#ticker-en", order="newest")
    assert (await page.evaluate("document.querySelector('#ticker-en').order"))[0] == "r3"


async def test_priority_items_are_shown_longer(page: Any, fake: Fake) -> None:
    """In the rotating mode a priority item stays for priority-dwell, a routine one for dwell."""
    stream, base = fake
    stream.send("item.published", item=item("urg", 900, urgency=2))
    stream.send("item.published", item=item("rou", 300))
    await open_demo(page, base, stream)
    await set_attrs(page, "#ticker-en", mode="rotate", dwell="1", priority_dwell="3")
    await wait_shown(page, "#ticker-en", ["rou"], ms=8000)
    # From the moment the urgent item comes back until it gives way: at least priority-dwell.
    await wait_shown(page, "#ticker-en", ["urg"], ms=8000)
    started = await page.evaluate("performance.now()")
    await wait_shown(page, "#ticker-en", ["rou"], ms=8000)
    held = await page.evaluate("performance.now()") - started
    assert held >= 2500  # a lower bound only: timers may run late, never early


@pytest.mark.parametrize("mode", ["rotate", "crawl"])
async def test_flash_interrupts_at_once(page: Any, fake: Fake, mode: str) -> None:
    """An arriving urgency-1 item replaces what is on screen at once, in either mode."""
    stream, base = fake
    stream.send("item.published", item=item("a", 600))
    stream.send("item.published", item=item("b", 300))
    await open_demo(page, base, stream)
    await set_attrs(page, "#ticker-en", mode=mode, dwell="60", speed="4")
    await wait_shown(page, "#ticker-en", ["b"])
    stream.send(
        "item.published", item=make_item("flash", "Flash: explosion at the port", urgency=1)
    )
    # Well inside one dwell (60 s) and one slow crawl pass of "b" (tens of seconds): only an
    # interruption puts the flash first on screen this soon.
    await page.wait_for_function(
        f"(sel) => ({SHOWN_JS})(sel)[0] === 'flash'", arg="#ticker-en", timeout=3000
    )
    if mode == "rotate":
        assert await shown(page) == ["flash"]
    assert await page.evaluate(
        "document.querySelector('#ticker-en').shadowRoot.querySelector('.bar')"
        ".classList.contains('urgent')"
    )


@pytest.mark.parametrize(
    ("edition", "marker", "note"),
    [
        ("en", "UPDATED", "Magnitude revised from 6.4"),
        ("ar", "مُحدَّث", "عُدّلت قوة الزلزال"),
        ("es", "ACTUALIZADO", "Magnitud corregida de 6,4"),
    ],
)
async def test_correction_shows_the_localised_marker_for_a_while(
    page: Any, fake: Fake, edition: str, marker: str, note: str
) -> None:
    """A correction shows the edition's UPDATED marker and its note, for updated-for seconds."""
    stream, base = fake
    sel = f"#ticker-{edition}"
    stream.send("item.published", item=item("q", 600, edition=edition))
    await open_demo(page, base, stream)
    await set_attrs(page, sel, mode="rotate", updated_for="2")
    await page.evaluate(LISTEN_JS)
    fixed = item("q", 600, edition=edition, version=2, headline="Corrected", correction_note=note)
    stream.send("item.updated", item=fixed)
    probe = """([sel, text]) => { const r = document.querySelector(sel).shadowRoot;
      const m = r.querySelector('li.item:not([hidden]) .updated');
      const n = r.querySelector('li.item:not([hidden]) .note');
      const bar = r.querySelector('.bar').getBoundingClientRect();
      if (!m || !n) return false;
      const mr = m.getBoundingClientRect();
      return m.textContent === text && mr.width > 0 && mr.right <= bar.right + 1
        && mr.left >= bar.left - 1 && n.textContent.length > 0; }"""
    await page.wait_for_function(probe, arg=[sel, marker], timeout=2000)
    assert (
        await page.evaluate(
            "(sel) => document.querySelector(sel).shadowRoot"
            ".querySelector('li.item:not([hidden]) .note').textContent",
            sel,
        )
        == note
    )
    assert [sel.lstrip("#"), "ticker-update", "q"] in await page.evaluate("window.seen")
    await page.wait_for_function(
        "(sel) => !document.querySelector(sel).shadowRoot.querySelector('.updated')",
        arg=sel,
        timeout=6000,
    )


async def test_retraction_removes_at_once_and_events_reach_the_page(page: Any, fake: Fake) -> None:
    """A retraction takes the item off the crawl at once; the page hears item, retract, state."""
    stream, base = fake
    stream.send("item.published", item=item("keep", 900))
    await page.goto(base + "/")
    await page.evaluate(LISTEN_JS)
    await stream.wait_clients(3)
    await page.wait_for_function("() => document.querySelector('#ticker-en').items.length === 1")
    await set_attrs(page, "#ticker-en", speed="4")
    stream.send("item.published", item=make_item("gone", "Minister resigns", urgency=1))
    await wait_shown(page, "#ticker-en", ["gone"])
    stream.send("item.retracted", item={"id": "gone", "edition": "en", "version": 2}, reason="x")
    await page.wait_for_function(
        "() => !document.querySelector('#ticker-en').shadowRoot.querySelector('[data-id=gone]')",
        timeout=1000,
    )
    seen = await page.evaluate("window.seen")
    mine = [s for s in seen if s[0] == "ticker-en"]
    assert ["ticker-en", "ticker-state", "open"] in mine
    assert mine.index(["ticker-en", "ticker-item", "gone"]) < mine.index(
        ["ticker-en", "ticker-retract", "gone"]
    )


async def test_reduced_motion_turns_the_crawl_into_rotation(
    browser: Any, fake: Fake, watch: PageWatch
) -> None:
    """Under prefers-reduced-motion the crawl is the rotating mode with nothing moving, and it
    crawls again when the preference is lifted."""
    stream, base = fake
    page = await open_page(browser, watch, reduced_motion="reduce")
    stream.send("item.published", item=item("m", 60))
    await open_demo(page, base, stream)
    state = """() => { const t = document.querySelector('#ticker-en');
      return [t.mode, t.getAttribute('data-mode'), t.shadowRoot.getAnimations().length]; }"""
    assert await page.evaluate(state) == ["rotate", "rotate", 0]
    assert await shown(page) == ["m"]
    await page.emulate_media(reduced_motion="no-preference")
    await page.wait_for_function("() => document.querySelector('#ticker-en').mode === 'crawl'")
    await page.wait_for_function(
        "() => document.querySelector('#ticker-en').shadowRoot.getAnimations().length > 0"
    )
    await page.context.close()


async def test_phone_folds_controls_keeps_time_and_hover_pauses(page: Any, fake: Fake) -> None:
    """At 320 px the label is the short one (configurable), prev/pause/next hide behind one
    button that opens them, the time stays visible, and hovering pauses the crawl."""
    stream, base = fake
    stream.send("item.published", item=item("x", 600))
    stream.send("item.published", item=item("y", 300))
    await page.set_viewport_size({"width": 320, "height": 700})
    await open_demo(page, base, stream)
    await set_attrs(page, "#ticker-en", short_label="BRK")
    probe = """() => { const r = document.querySelector('#ticker-en').shadowRoot;
      const vis = (el) => getComputedStyle(el).display !== 'none';
      const label = [...r.querySelectorAll('.label span')].find(vis).textContent;
      const more = r.querySelector('.more');
      const time = r.querySelector('li.item .time');
      return {label, more: vis(more), expanded: more.getAttribute('aria-expanded'),
              ctl: [...r.querySelectorAll('.ctl:not(.push)')].map(vis),
              time: vis(time) && !!time.textContent}; }"""
    assert await page.evaluate(probe) == {
        "label": "BRK",
        "more": True,
        "expanded": "false",
        "ctl": [False, False, False],
        "time": True,
    }
    await page.locator("#ticker-en").locator(".more").click()
    opened = await page.evaluate(probe)
    assert opened["expanded"] == "true" and opened["ctl"] == [True, True, True]
    await page.locator("#ticker-en").locator(".items").hover()
    await page.wait_for_function(
        "() => document.querySelector('#ticker-en').shadowRoot.getAnimations()"
        ".every(a => a.playState === 'paused')"
    )
    assert await page.evaluate("document.querySelector('#ticker-en').paused") is True


async def test_parts_and_custom_properties_theme_the_bar(
    browser: Any, fake: Fake, watch: PageWatch
) -> None:
    """A host page styles the documented parts and custom properties, marker included."""
    stream, base = fake
    page = await open_page(browser, watch, bypass_csp=True)
    stream.send("item.published", item=item("t", 60, version=2, correction_note="Fixed"))
    await open_demo(page, base, stream)
    await set_attrs(page, "#ticker-en", mode="rotate")
    await page.add_style_tag(
        content="breaking-ticker::part(headline) { color: rgb(1, 2, 3); }"
        " breaking-ticker::part(time) { font-style: italic; }"
        " #ticker-en { --ticker-updated-bg: rgb(4, 5, 6); --ticker-label-bg: rgb(7, 8, 9); }"
    )
    styles = await page.evaluate(
        """() => { const r = document.querySelector('#ticker-en').shadowRoot;
          const cs = (q) => getComputedStyle(r.querySelector(q));
          return [cs('.headline').color, cs('.time').fontStyle,
                  cs('.updated').backgroundColor, cs('.label').backgroundColor]; }"""
    )
    assert styles == ["rgb(1, 2, 3)", "italic", "rgb(4, 5, 6)", "rgb(7, 8, 9)"]
    await page.context.close()


async def test_push_opt_in_button_hands_the_filter_to_the_page_code(
    browser: Any, fake: Fake, watch: PageWatch
) -> None:
    """With push-worker set, the bar offers a localised "alert me" button; a click hands the
    bar's edition and filters to the Web Push page code and marks the button pressed.
    (Headless Chromium has no push service: the page code is the part stubbed here; it runs
    for real against the fake push service in tests/test_webpush.py.)"""
    stream, base = fake
    page = await open_page(browser, watch)
    await page.add_init_script(
        "window.TickerPush = {subscribe: async (o) => { window.pushed = o; return 'id'; }};"
    )
    await open_demo(page, base, stream)
    sel = "#ticker-ar"
    button_js = f"() => document.querySelector('{sel}').shadowRoot.querySelector('button.push')"
    assert await page.evaluate(f"() => ({button_js})().hidden")  # off unless the site asks
    await set_attrs(page, sel, **{"push-worker": "/sw.js", "categories": "world,politics"})
    assert not await page.evaluate(f"() => ({button_js})().hidden")
    label = await page.evaluate(f"() => ({button_js})().getAttribute('aria-label')")
    assert label == "نبّهني إلى الأخبار العاجلة"
    await page.evaluate(f"() => ({button_js})().click()")
    await page.wait_for_function("() => window.pushed")
    pushed = await page.evaluate("() => window.pushed")
    assert pushed["worker"] == "/sw.js" and pushed["edition"] == "ar"
    assert pushed["maxUrgency"] == 2 and pushed["categories"] == ["world", "politics"]
    assert await page.evaluate(f"() => ({button_js})().getAttribute('aria-pressed')") == "true"
    await page.context.close()

"""Whole headlines at every width, for en, ar and es: the crawl carries each one fully through
the bar, the rotating mode wraps it unclipped, the time stays on screen, and axe-core finds no
accessibility violation. Screenshots of each width and edition go to test-artifacts/widget/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe

from tests.support.widget_probe import (
    CRAWL_PASS_JS,
    WRAP_JS,
    crawl_fully_seen,
    keep_screenshot,
    set_attrs,
)
from ticker import demo

from .conftest import PageWatch, open_page
from .fake_stream import FakeStream, make_item, serve_fake_stream, stamp

pytestmark = pytest.mark.browser

EDITIONS = ("en", "ar", "es")
WIDTHS = (320, 390, 768, 1280)
SHORT_LABELS = {"en": "NOW", "ar": "عاجل", "es": "AHORA"}
LONG_LABELS = {"en": "BREAKING", "ar": "عاجل", "es": "ÚLTIMA HORA"}


def longest_headline(edition: str) -> str:
    """The edition's longest demo headline: the hardest to show whole."""
    return max((e["headline"] for e in demo.load_desks((edition,))[edition]), key=len)


@pytest.fixture
async def stream_base() -> AsyncIterator[tuple[FakeStream, str]]:
    stream = FakeStream()
    for edition in EDITIONS:
        item = make_item(
            f"long-{edition}",
            longest_headline(edition),
            edition=edition,
            urgency=3,
            url=f"https://news.example/{edition}/story",
            published_at=stamp(-240),
        )
        stream.send("item.published", item=item)
    async with serve_fake_stream(stream) as base:
        yield stream, base


async def shot(page: Any, selector: str, folder: Path, name: str) -> None:
    path = folder / name
    await page.locator(selector).screenshot(path=str(path))
    keep_screenshot(path)


@pytest.mark.parametrize("width", WIDTHS)
async def test_whole_headline_at_every_width(
    browser: Any,
    stream_base: tuple[FakeStream, str],
    watch: PageWatch,
    artifacts: Path,
    width: int,
) -> None:
    """At this width each edition's longest headline crawls fully through the bar in its
    script's direction, wraps whole in the rotating mode, the time stays visible, the label
    shortens on phones, and axe-core reports no violation."""
    stream, base = stream_base
    folder = artifacts / "widget"
    folder.mkdir(exist_ok=True)
    page = await open_page(browser, watch)
    await page.set_viewport_size({"width": width, "height": 900})
    await page.goto(base + "/")
    await stream.wait_clients(3)
    await page.wait_for_function(
        "() => [...document.querySelectorAll('breaking-ticker')].every(t => t.items.length === 1)"
    )
    selectors = {e: f"#ticker-{e}" for e in EDITIONS}

    # Crawl: a still frame at the start of the pass for the docs, then the pass measured.
    for edition, sel in selectors.items():
        await set_attrs(page, sel, mode="crawl")
        await page.evaluate(
            "(sel) => document.querySelector(sel).shadowRoot.getAnimations()"
            ".forEach(a => { a.pause(); a.currentTime = 0; })",
            sel,
        )
        await shot(page, sel, folder, f"{edition}-{width}-crawl.png")
        await set_attrs(page, sel, speed="13")  # restarts the pass, running
    for edition, sel in selectors.items():
        m = await page.evaluate(CRAWL_PASS_JS, [sel, f"long-{edition}", 10000])
        assert m is not None, f"{edition}: no crawl pass"
        assert m["running"], edition  # it was moving on its own
        assert m["scrollWidth"] <= m["clientWidth"] + 1, edition  # nothing cut inside the text
        assert crawl_fully_seen(m), (edition, m)
        moved = m["last"] - m["first"]
        assert moved > 0 if edition == "ar" else moved < 0, (edition, m)  # script direction

    crawl_axe = await Axe().run(page)  # the crawl's controls (the folded ones on phones)
    assert crawl_axe.violations_count == 0, crawl_axe.generate_report()

    # Rotate: the whole headline wraps inside the bar; the time stays.
    for sel in selectors.values():
        await set_attrs(page, sel, mode="rotate")
    for edition, sel in selectors.items():
        m = await page.evaluate(WRAP_JS, sel)
        assert m["text"] == longest_headline(edition)
        assert m["overflowX"] <= 1 and m["overflowY"] <= 1, (edition, m)
        assert m["barOverflowY"] <= 1 and m["headlineInList"] and m["headlineInBar"], (edition, m)
        assert m["timeShown"], (edition, m)
        if width <= 390:
            assert m["lines"] >= 2, (edition, m)  # it wrapped rather than being cut
        label = await page.evaluate(
            "(sel) => [...document.querySelector(sel).shadowRoot.querySelectorAll('.label span')]"
            ".find(s => getComputedStyle(s).display !== 'none').textContent",
            sel,
        )
        expected = SHORT_LABELS if width <= 520 else LONG_LABELS
        assert label == expected[edition]
        await shot(page, sel, folder, f"{edition}-{width}-rotate.png")

    results = await Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    assert watch.errors == [] and watch.csp_violations == []
    await page.context.close()

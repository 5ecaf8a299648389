"""The crawl against the whole service (API, worker, Redis, SSE) on a phone-sized page: the
versioned script, a whole headline measured through the bar, a correction's marker and note,
and a retraction."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.stack import Stack, auth
from tests.support.widget_probe import CRAWL_PASS_JS, crawl_fully_seen, set_attrs

from .conftest import PageWatch

pytestmark = pytest.mark.browser

HEADLINE = "Typhoon Kalmaegi makes landfall north of Manila with winds of 185 km/h"


async def test_live_crawl_correction_and_retraction(
    page: Any, stack: Stack, watch: PageWatch
) -> None:
    """Served from the real app at 390 px, the immutable versioned script crawls a posted
    headline fully through the bar, shows UPDATED and the note after a PATCH, and drops the
    item after a DELETE."""
    scripts: list[Any] = []
    page.on("response", lambda r: scripts.append(r) if r.url.endswith("ticker.min.js") else None)
    await page.set_viewport_size({"width": 390, "height": 800})
    await page.goto(stack.base + "/")
    await page.wait_for_function(
        "() => document.querySelector('#ticker-en').status === 'open'", timeout=10000
    )
    assert len(scripts) == 1
    assert scripts[0].headers["cache-control"] == "public, max-age=31536000, immutable"
    snippet = await page.text_content("#snippet")
    assert f'src="{stack.base}/widget/' in (snippet or "")
    await set_attrs(page, "#ticker-en", speed="40")  # passes of a few seconds

    view = await stack.publish(HEADLINE, urgency=2, regions=["asia-pacific"])
    item_id = view["id"]
    m = await page.evaluate(CRAWL_PASS_JS, ["#ticker-en", item_id, 20000])
    assert m is not None and m["running"] and crawl_fully_seen(m), m

    r = await stack.http.patch(
        f"/v1/items/{item_id}",
        json={"headline": HEADLINE.replace("185", "175"), "correction_note": "Wind speed revised"},
        headers=auth(),
    )
    assert r.status_code == 202, r.text
    await page.wait_for_function(
        """(id) => { const r = document.querySelector('#ticker-en').shadowRoot;
          return [...r.querySelectorAll(`li.item[data-id="${id}"]`)].some(li =>
            li.querySelector('.updated')?.textContent === 'UPDATED'
            && li.querySelector('.note')?.textContent === 'Wind speed revised'
            && li.querySelector('.headline').textContent.includes('175')); }""",
        arg=item_id,
        timeout=20000,
    )
    r = await stack.http.request(
        "DELETE", f"/v1/items/{item_id}", json={"reason": "duplicate desk"}, headers=auth()
    )
    assert r.status_code == 202, r.text
    await page.wait_for_function(
        "(id) => !document.querySelector('#ticker-en').shadowRoot"
        '.querySelector(`li.item[data-id="${id}"]`)',
        arg=item_id,
        timeout=5000,
    )
    assert watch.errors == [] and watch.csp_violations == []

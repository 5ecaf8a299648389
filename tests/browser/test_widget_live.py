"""The widget and the console against the whole service: API, worker, Redis, SSE."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.support.helpers import wait_for
from tests.support.stack import Api, Stack, auth, running_stack
from ticker.config import Settings

from .conftest import PageWatch
from .fake_stream import serve_app

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"


async def open_ticker(page: Any, stack: Stack, selector: str = "#ticker-en") -> None:
    """Open the demo page and wait until the widget has its snapshot."""
    await page.goto(stack.base + "/")
    await page.wait_for_function(
        "(sel) => { const t = document.querySelector(sel);"
        " return t.status === 'open' && t.lastEventId !== null; }",
        arg=selector,
        timeout=10000,
    )


async def shown(page: Any, selector: str = "#ticker-en") -> list[str]:
    return await page.evaluate(  # type: ignore[no-any-return]
        "(sel) => document.querySelector(sel).items.map(i => i.headline)", selector
    )


async def wait_headlines(page: Any, expected: list[str], selector: str = "#ticker-en") -> None:
    await page.wait_for_function(
        "([sel, want]) => JSON.stringify(document.querySelector(sel).items.map(i => i.headline))"
        " === JSON.stringify(want)",
        arg=[selector, expected],
        timeout=5000,
    )


async def test_posted_item_shows_within_a_second(page: Any, stack: Stack, watch: PageWatch) -> None:
    """An item posted through the API is on screen in under a second, worker included."""
    await open_ticker(page, stack)
    started = time.monotonic()
    r = await stack.post(
        {"headline": "At least 60 dead in shipwreck off Yemen: IOM", "edition": "en"}
    )
    assert r.status_code == 202, r.text
    item_id = r.json()["id"]
    await page.wait_for_function(
        "(id) => document.querySelector('#ticker-en').items.some(i => i.id === id)",
        arg=item_id,
        timeout=1000,
    )
    assert time.monotonic() - started < 1.0
    assert await shown(page, "#ticker-ar") == []  # other editions are filtered out
    assert watch.errors == [] and watch.csp_violations == []


async def test_retraction_removes_and_correction_changes(page: Any, stack: Stack) -> None:
    """A correction replaces the headline in place; a retraction takes the item off the bar."""
    first = await stack.publish("Earthquake of magnitude 6.1 hits central Chile")
    second = await stack.publish("Central bank raises rates by half a point")
    await open_ticker(page, stack)
    await wait_headlines(
        page,
        [
            "Central bank raises rates by half a point",
            "Earthquake of magnitude 6.1 hits central Chile",
        ],
    )
    r = await stack.http.patch(
        f"/v1/items/{first['id']}",
        json={"headline": "Earthquake of magnitude 6.4 hits central Chile"},
        headers=auth(),
    )
    assert r.status_code == 202, r.text
    await wait_headlines(
        page,
        [
            "Central bank raises rates by half a point",
            "Earthquake of magnitude 6.4 hits central Chile",
        ],
    )
    r = await stack.http.request(
        "DELETE", f"/v1/items/{second['id']}", json={"reason": "wrong figure"}, headers=auth()
    )
    assert r.status_code == 202, r.text
    await wait_headlines(page, ["Earthquake of magnitude 6.4 hits central Chile"])


async def test_markup_headline_runs_nothing(page: Any, stack: Stack, watch: PageWatch) -> None:
    """A markup headline from the API shows as its own text: no element, no dialog."""
    await open_ticker(page, stack)
    view = await stack.publish(XSS)
    await page.wait_for_function(
        "(id) => document.querySelector('#ticker-en').items.some(i => i.id === id)",
        arg=view["id"],
        timeout=5000,
    )
    text = await page.evaluate(
        "() => document.querySelector('#ticker-en').shadowRoot"
        ".querySelector('li.item:not([hidden]) .headline').textContent"
    )
    assert text == XSS
    assert (
        await page.evaluate(
            "() => document.querySelectorAll('img').length"
            " + document.querySelector('#ticker-en').shadowRoot.querySelectorAll('img').length"
        )
        == 0
    )
    assert watch.dialogs == [] and watch.errors == []


async def test_arabic_renders_right_to_left(page: Any, stack: Stack, artifacts: Path) -> None:
    """An Arabic item renders in a right-to-left bar labelled عاجل; screenshots are saved."""
    await open_ticker(page, stack, "#ticker-ar")
    await stack.publish("مقتل 60 على الأقل في غرق سفينة قبالة اليمن", edition="ar", urgency=2)
    await stack.publish("At least 60 dead in shipwreck off Yemen: IOM", urgency=4)
    await stack.publish("Mueren al menos 60 personas en un naufragio frente a Yemen", edition="es")
    await wait_headlines(page, ["مقتل 60 على الأقل في غرق سفينة قبالة اليمن"], "#ticker-ar")
    await wait_headlines(page, ["At least 60 dead in shipwreck off Yemen: IOM"], "#ticker-en")
    direction = await page.evaluate(
        "() => getComputedStyle(document.querySelector('#ticker-ar').shadowRoot"
        ".querySelector('.bar')).direction"
    )
    assert direction == "rtl"
    # Wait for the urgent flash to finish so the screenshot shows the resting colours.
    await page.wait_for_function(
        "() => document.querySelector('#ticker-ar').shadowRoot.querySelector('.label')"
        ".getAnimations().length === 0",
        timeout=10000,
    )
    await page.screenshot(path=str(artifacts / "live-demo-page.png"), full_page=True)
    await page.locator("#ticker-en").screenshot(path=str(artifacts / "live-widget-en.png"))
    await page.locator("#ticker-ar").screenshot(path=str(artifacts / "live-widget-ar.png"))


@pytest.mark.slow
async def test_items_posted_while_the_server_was_down_appear(page: Any, stack: Stack) -> None:
    """After a restart on the same port the widget resumes and shows what it missed."""
    await stack.publish("Before the restart")
    await open_ticker(page, stack)
    await wait_headlines(page, ["Before the restart"])
    port = stack.api.port
    await stack.api.stop()
    await page.wait_for_function(
        "() => document.querySelector('#ticker-en').status !== 'open'", timeout=10000
    )
    # Another API node takes the post while this one is down; the worker publishes it.
    other = Api(stack.settings)
    await other.start()
    try:
        async with httpx.AsyncClient(base_url=other.base, timeout=10) as http:
            r = await http.post(
                "/v1/items", json={"headline": "During the outage", "edition": "en"}, headers=auth()
            )
            assert r.status_code == 202, r.text
            item_id = r.json()["id"]

            async def published() -> bool:
                view = (await http.get(f"/v1/items/{item_id}", headers=auth())).json()
                return view["status"] == "published"

            await wait_for(published, 5, what="the outage item to publish")
    finally:
        await other.stop()
    restarted = Api(stack.settings, port)
    await restarted.start()
    try:
        await page.wait_for_function(
            "() => document.querySelector('#ticker-en').items.some("
            "i => i.headline === 'During the outage')",
            timeout=20000,
        )
        assert await shown(page) == ["During the outage", "Before the restart"]
    finally:
        await restarted.stop()


def partner_site(service: dict[str, str]) -> Starlette:
    """Another site's article page embedding the ticker, with loud page styles and no CSP."""

    async def article(request: Request) -> HTMLResponse:
        return HTMLResponse(
            "<!doctype html><html><head><title>Partner</title>"
            "<style>body { font: 40px serif; color: green; text-transform: uppercase; }</style>"
            f'<script src="{service["base"]}/embed.js" defer></script></head><body>'
            '<p>Partner site</p><breaking-ticker id="partner" edition="en"></breaking-ticker>'
            "</body></html>"
        )

    return Starlette(routes=[Route("/", article)])


@pytest.mark.parametrize("allowed", [True, False])
async def test_cross_origin_embed_follows_the_allowlist(
    page: Any, settings: Settings, allowed: bool, artifacts: Path
) -> None:
    """A page on another origin gets the live ticker only when its origin is on the allowlist."""
    service: dict[str, str] = {}
    async with serve_app(partner_site(service)) as port:
        # localhost and 127.0.0.1 are two origins, both loopback: Chromium's local-network
        # rule (public pages may not call loopback) stays out of the way.
        partner = f"http://localhost:{port}"
        origins = (partner,) if allowed else ("https://news.example",)
        async with running_stack(replace(settings, allowed_origins=origins)) as stack:
            service["base"] = stack.base
            await page.goto(partner + "/")
            await page.wait_for_function(
                "() => ['open', 'reconnecting'].includes(document.querySelector('#partner').status)"
            )
            view = await stack.publish("Partner sites get the ticker too")
            if allowed:
                await page.wait_for_function(
                    "(id) => document.querySelector('#partner').items.some(i => i.id === id)",
                    arg=view["id"],
                    timeout=5000,
                )
                await page.locator("#partner").screenshot(path=str(artifacts / "partner.png"))
            else:
                await page.wait_for_function(
                    "() => document.querySelector('#partner').status === 'reconnecting'",
                    timeout=5000,
                )
                assert await page.evaluate("() => document.querySelector('#partner').items") == []

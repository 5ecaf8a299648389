"""The editors' desk in the real browser: two editors, one live board, sign-in and CSRF.

Set TICKER_UPDATE_SCREENSHOTS=1 to write the screenshots of docs/desk.md afresh
(docs/screenshots/desk/); otherwise they go to test-artifacts/.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import Stack, auth, running_stack
from ticker.config import Settings
from ticker.desk import accounts

from .conftest import ARTIFACTS, PageWatch, open_page

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "desk"
WIDE = {"width": 1280, "height": 800}


async def shot(page: Any, name: str) -> None:
    """A screenshot of the current state, for docs/desk.md (or the test artifacts)."""
    folder = DOCS_SHOTS if os.environ.get("TICKER_UPDATE_SCREENSHOTS") else ARTIFACTS
    folder.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(folder / f"{name}.png"), scale="css")


async def add(
    stack: Stack, name: str, role: str = "editor", editions: list[str] | None = None
) -> None:
    await accounts.add_user(
        stack.redis, stack.keys, name, PASSWORD, role, editions, stack.settings.editions
    )


async def desk(browser: Any, stack: Stack, watch: PageWatch, name: str, **ctx: Any) -> Any:
    """A page of its own browser context, signed in to the desk as ``name``."""
    viewport = ctx.pop("viewport", WIDE)
    page = await open_page(browser, watch, **ctx)
    await page.set_viewport_size(viewport)
    await page.goto(stack.base + "/console")
    await sign_in(page, name, PASSWORD)
    # argon2 is slow on purpose, slower still on a busy machine: a generous wait.
    await page.locator("#desk").wait_for(state="visible", timeout=20000)
    await page.locator("#feed-status", has_text="Live").wait_for(timeout=10000)
    return page


async def sign_in(page: Any, name: str, password: str) -> None:
    await page.locator("#signin-form").wait_for(state="visible", timeout=5000)
    await page.fill("#s-name", name)
    await page.fill("#s-password", password)
    await page.click("#signin-form button[type=submit]")


def card(page: Any, item_id: str) -> Any:
    return page.locator(f"#card-{item_id}")


@pytest.fixture
async def two(browser: Any, stack: Stack, watch: PageWatch) -> AsyncIterator[tuple[Any, Any]]:
    await add(stack, "alice")
    await add(stack, "bea")
    a = await desk(browser, stack, watch, "alice")
    b = await desk(browser, stack, watch, "bea")
    yield a, b
    for p in (a, b):
        await p.context.close()


async def test_one_posts_the_other_sees_corrects_and_retracts(
    two: tuple[Any, Any], stack: Stack, watch: PageWatch
) -> None:
    """Alice posts; Bea's board shows it within a second; Bea's correction reaches Alice's
    board; Alice's retraction (with its reason) takes it off Bea's board."""
    alice, bea = two
    await shot(bea, "01-empty-board")
    headline = "At least 60 dead in shipwreck off Yemen: IOM"
    await alice.fill("#f-headline", headline)
    await alice.fill("#f-summary", "The boat carried migrants from the Horn of Africa.")
    await alice.select_option("#f-urgency", "2")
    await alice.fill("#f-categories", "world")
    await alice.fill("#f-regions", "mena")
    await alice.click("#post-button")
    on_bea = bea.locator("#board .card", has_text=headline)
    # The product promise: on the other editor's board within a second of the click.
    await on_bea.locator(".badge", has_text="published").wait_for(timeout=1000)
    assert await on_bea.locator("[data-role=urgency]").text_content() == "flash 2"
    await alice.locator("#post-status", has_text="Published").wait_for(timeout=5000)
    await shot(alice, "02-posted")
    item_id = (await on_bea.get_attribute("data-id")) or ""

    await card(bea, item_id).locator("[data-action=correct]").click()
    form = card(bea, item_id).locator("[data-role=correct-form]")
    await form.locator("textarea[name=headline]").fill(
        "At least 61 dead in shipwreck off Yemen: IOM"
    )
    await form.locator("input[name=correction_note]").fill("Toll updated")
    await shot(bea, "03-correcting")
    await form.locator("button[type=submit]").click()
    corrected = card(alice, item_id).locator("[data-role=headline]")
    await corrected.filter(has_text="At least 61 dead").wait_for(timeout=5000)

    await card(alice, item_id).locator("[data-action=history]").click()
    history = card(alice, item_id).locator("[data-role=history]")
    await history.filter(has_text="user:bea").wait_for(timeout=5000)
    assert "At least 60 dead" in (await history.text_content() or "")
    await shot(alice, "04-history")

    await card(alice, item_id).locator("[data-action=retract]").click()
    retract = card(alice, item_id).locator("[data-role=retract-form]")
    await retract.locator("button[type=submit]").click()  # no reason: refused in the page
    await card(alice, item_id).locator("[data-role=error]", has_text="reason").wait_for()
    await retract.locator("input[name=reason]").fill("Toll not confirmed by IOM")
    await retract.locator("button[type=submit]").click()
    await card(bea, item_id).wait_for(state="detached", timeout=5000)
    await card(alice, item_id).wait_for(state="detached", timeout=5000)
    view = (await stack.http.get(f"/v1/items/{item_id}", headers=_key())).json()
    assert view["retraction"]["reason"] == "Toll not confirmed by IOM"
    assert view["retraction"]["by"] == "user:alice"
    assert watch.errors == [] and watch.csp_violations == []


async def test_pin_and_embargo_publish_now(two: tuple[Any, Any], stack: Stack) -> None:
    """Pin marks the item on the other board; the board filters by urgency and section; an
    embargoed item is published at once with "Publish now" and turns live on both boards."""
    alice, bea = two
    live = await stack.publish("Central bank holds rates", urgency=5)
    await card(alice, live["id"]).locator("[data-action=pin]").click()
    await card(bea, live["id"]).locator("[data-role=pinned]").wait_for(timeout=5000)
    r = await stack.post(
        {
            "headline": "Election results: the count so far",
            "edition": "en",
            "urgency": 3,
            "embargoed_until": "2999-01-01T00:00:00Z",
        }
    )
    held_id = r.json()["id"]
    await card(bea, held_id).locator(".badge", has_text="embargoed").wait_for(timeout=5000)
    await shot(bea, "05-embargoed-and-pinned")
    await bea.select_option("#b-urgency", "4")  # the board filter: urgent and flash only
    await card(bea, live["id"]).wait_for(state="detached", timeout=5000)
    assert await card(bea, held_id).is_visible()
    await bea.fill("#b-section", "politics")
    await card(bea, held_id).wait_for(state="detached", timeout=5000)
    await bea.fill("#b-section", "")
    await bea.select_option("#b-urgency", "9")
    await card(bea, live["id"]).wait_for(timeout=5000)
    assert await card(bea, live["id"]).locator("[data-action=publish-now]").is_hidden()
    await card(bea, held_id).locator("[data-action=publish-now]").click()
    await card(alice, held_id).locator(".badge", has_text="published").wait_for(timeout=5000)


async def test_sign_in_failure_and_sign_out(browser: Any, stack: Stack, watch: PageWatch) -> None:
    """A wrong password is refused in the page; sign-out ends the session on the server."""
    await add(stack, "alice")
    page = await open_page(browser, watch)
    await page.set_viewport_size(WIDE)
    await page.goto(stack.base + "/console")
    await sign_in(page, "alice", "not the password")
    await page.locator("#signin-status", has_text="wrong name or password").wait_for(timeout=5000)
    assert await page.locator("#desk").is_hidden()
    await shot(page, "06-sign-in-refused")
    await sign_in(page, "alice", PASSWORD)
    await page.locator("#feed-status", has_text="Live").wait_for(timeout=5000)
    cookie = next(c for c in await page.context.cookies() if c["name"] == "ticker_desk")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    await page.click("#sign-out")
    await page.locator("#signin-status", has_text="Signed out").wait_for(timeout=5000)
    status = await page.evaluate("async () => (await fetch('/desk/me')).status")
    assert status == 401
    await page.context.close()


async def test_session_expiry_returns_to_sign_in(
    browser: Any, settings: Settings, watch: PageWatch
) -> None:
    """When the session expires the board says so and shows the sign-in form, no reload."""
    async with running_stack(replace(settings, desk_session_seconds=2)) as stack:
        await add(stack, "alice")
        page = await desk(browser, stack, watch, "alice")
        await page.locator("#signin-status", has_text="session has ended").wait_for(timeout=8000)
        assert await page.locator("#desk").is_hidden()
        await shot(page, "07-session-expired")
        await page.context.close()


async def test_csrf_refused_changes_nothing(two: tuple[Any, Any], stack: Stack) -> None:
    """A request from the signed-in page without the CSRF token gets 403 and stores nothing."""
    alice, _ = two
    answer = await alice.evaluate(
        """async () => {
          const r = await fetch('/v1/items', {method: 'POST',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({headline: 'Forged item', edition: 'en'})});
          return [r.status, (await r.json()).error.field];
        }"""
    )
    assert answer == [403, "X-CSRF-Token"]
    assert await stack.redis.zcard(stack.keys.items_index) == 0


async def test_editor_limited_to_ar_never_sees_en(
    browser: Any, stack: Stack, watch: PageWatch
) -> None:
    """An editor limited to ar gets no en edition to post to or filter by, and no en card;
    Arabic typed in the form runs right to left."""
    await add(stack, "amal", editions=["ar"])
    en = await stack.publish("Quake hits the north")
    ar = await stack.post({"headline": "زلزال يضرب الشمال", "edition": "ar"})
    page = await desk(browser, stack, watch, "amal")
    await card(page, ar.json()["id"]).locator(".badge", has_text="published").wait_for(timeout=5000)
    assert await page.locator(f"#card-{en['id']}").count() == 0
    assert await page.eval_on_selector_all("#f-edition option", "os => os.map(o => o.value)") == [
        "ar"
    ]
    assert await page.eval_on_selector_all("#b-edition option", "os => os.map(o => o.value)") == [
        "ar"
    ]
    assert await page.locator("#f-edition option").text_content() == "العربية (ar)"
    assert await page.locator("#board .card").count() == 1
    await page.fill("#f-headline", "انفجار في الميناء")
    assert await page.eval_on_selector("#f-headline", "el => el.matches(':dir(rtl)')")
    await shot(page, "08-arabic-editor")
    await page.context.close()


async def test_keyboard_path_and_layout(
    two: tuple[Any, Any], stack: Stack, browser: Any, watch: PageWatch
) -> None:
    """Ctrl+Enter posts and j/k walk the board; the board fills a 1280 px screen, and a 390 px
    phone needs no sideways scrolling."""
    alice, _ = two
    await stack.publish("First item on the board")
    await alice.fill("#f-headline", "Second item, posted from the keyboard")
    await alice.press("#f-headline", "Control+Enter")
    await alice.locator("#board .card", has_text="from the keyboard").wait_for(timeout=5000)
    await alice.locator("#board .card").nth(1).wait_for()
    await alice.locator("#post-status", has_text="Published").wait_for(timeout=5000)
    await alice.evaluate("() => document.activeElement.blur()")
    await alice.keyboard.press("j")
    first = await alice.evaluate("() => document.activeElement.id")
    await alice.keyboard.press("j")
    second = await alice.evaluate("() => document.activeElement.id")
    await alice.keyboard.press("k")
    assert await alice.evaluate("() => document.activeElement.id") == first
    assert first.startswith("card-") and second.startswith("card-") and first != second

    board = await alice.eval_on_selector(".board-panel", "el => el.getBoundingClientRect().right")
    assert board > 1280 * 0.95  # the board reaches the right edge of the screen
    await shot(alice, "09-wide")

    await add(stack, "phone")
    phone = await desk(
        browser, stack, watch, "phone", viewport={"width": 390, "height": 844}, is_mobile=True
    )
    await phone.locator("#board .card").nth(1).wait_for(timeout=5000)
    overflow = await phone.evaluate("() => document.documentElement.scrollWidth")
    assert overflow <= 390
    await shot(phone, "10-phone")
    await phone.context.close()


def _key() -> dict[str, str]:
    from tests.support.stack import auth

    return auth()


async def test_held_near_duplicate_is_shown_and_published_anyway(
    two: tuple[Any, Any], stack: Stack
) -> None:
    """Another agency's rewrite of a live story is held: the other board shows it at once
    with both headlines and why they matched, and "Publish anyway" puts it live on both."""
    alice, bea = two
    first = await stack.publish("EU imposes sanctions on Iranian drone makers")
    r = await stack.post({"headline": "EU sanctions Iranian drone makers", "edition": "en"})
    held_id = r.json()["id"]
    held = card(bea, held_id)
    await held.locator(".badge", has_text="held").wait_for(timeout=10000)
    assert await held.locator("[data-role=held-new]").inner_text() == (
        "EU sanctions Iranian drone makers"
    )
    # The matched headline, not its id (from the board, or fetched when it is not there).
    old = held.locator("[data-role=held-old]", has_text="EU imposes sanctions on Iranian drone")
    await old.wait_for(timeout=2000)
    assert (await held.locator("[data-role=held-why]").inner_text()).strip()
    view = await stack.wait_status(held_id, "held")
    assert view["duplicate_of"] == first["id"]
    await shot(bea, "11-held-near-duplicate")
    await held.locator("[data-action=publish-anyway]").click()
    await card(alice, held_id).locator(".badge", has_text="published").wait_for(timeout=10000)
    history = (await stack.http.get(f"/v1/items/{held_id}/history", headers=auth())).json()
    assert [e["action"] for e in history["history"]][-3:-1] == ["held", "published_anyway"]
    assert history["history"][-2]["by"] == "user:bea"

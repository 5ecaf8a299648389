"""The Web Push service worker in Chromium, fed by what the fake push service decrypted.

Headless Chromium has no push service of its own, so the chain is: the worker
encrypts an alert for a browser key held by the fake push service
(bench/push_service.py), the fake checks and decrypts it, and the clear
payload is delivered to the real service worker through the DevTools protocol
(``ServiceWorker.deliverPushMessage``), as Chromium's push service would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson
import pytest

from bench.push_service import FakePushService, running_push_service
from tests.support.helpers import wait_for
from tests.support.stack import Stack, auth, running_stack
from ticker.config import Settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REGISTER = """
async () => {
  const r = await navigator.serviceWorker.register('/static/ticker-push-sw.js',
                                                   {scope: '/static/'});
  const w = r.installing || r.waiting || r.active;
  if (w.state !== 'activated') {
    await new Promise(done => w.addEventListener('statechange', () => {
      if (w.state === 'activated') done();
    }));
  }
}
"""
NOTIFICATIONS = """
() => navigator.serviceWorker.getRegistration('/static/')
  .then(r => r.getNotifications())
  .then(ns => ns.map(n => ({title: n.title, body: n.body, dir: n.dir, lang: n.lang,
                           tag: n.tag})))
"""


@pytest.fixture
async def push_stack(settings: Settings) -> AsyncIterator[tuple[Stack, FakePushService]]:
    async with running_push_service() as service:
        s = replace(settings, **service.settings())
        async with running_stack(s) as stack:
            yield stack, service


async def _worker_page(browser: Any, base: str) -> tuple[Any, Any, str]:
    """A page of the ticker's origin with the service worker registered; its CDP session."""
    context = await browser.new_context()
    await context.grant_permissions(["notifications"], origin=base)
    page = await context.new_page()
    await page.goto(base + "/")
    cdp = await context.new_cdp_session(page)
    registrations: asyncio.Queue[str] = asyncio.Queue()
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: [registrations.put_nowait(r["registrationId"]) for r in e["registrations"]],
    )
    await cdp.send("ServiceWorker.enable")
    await page.evaluate(REGISTER)
    registration = await asyncio.wait_for(registrations.get(), 10)
    return page, cdp, registration


async def test_alert_shows_and_withdrawal_closes_the_notification(
    browser: Any, push_stack: tuple[Stack, FakePushService]
) -> None:
    """An Arabic flash becomes a right-to-left notification with its headline; the
    correction replaces it (marked updated); the retraction's withdrawal closes it."""
    stack, service = push_stack
    b = service.browser()
    body = {"subscription": b.subscription(), "filter": {"edition": "ar"}}
    assert (await stack.http.post("/v1/push/subscriptions", json=body)).status_code == 201
    page, cdp, registration = await _worker_page(browser, stack.base)

    async def deliver(n: int) -> list[dict[str, Any]]:
        await wait_for(lambda: len(service.for_browser(b)) >= n, 10, what=f"push {n}")
        data = orjson.dumps(service.for_browser(b)[n - 1].payload).decode()
        await cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": stack.base, "registrationId": registration, "data": data},
        )
        shown: list[dict[str, Any]] = []

        async def settled() -> bool:
            nonlocal shown
            shown = await page.evaluate(NOTIFICATIONS)
            return (n == 3 and not shown) or (
                n < 3 and bool(shown) and (n == 1 or shown[0]["title"].endswith("مُحدَّث"))
            )

        await wait_for(settled, 10, what=f"the service worker to handle push {n}")
        return shown

    item = await stack.publish("زلزال يضرب ليما", edition="ar", urgency=1)
    (shown,) = await deliver(1)
    assert shown["title"] == "عاجل" and shown["body"] == "زلزال يضرب ليما"
    assert shown["dir"] == "rtl" and shown["lang"] == "ar"
    assert shown["tag"] == f"ticker-{item['id']}"

    r = await stack.http.patch(
        f"/v1/items/{item['id']}", json={"headline": "زلزال بقوة 6 يضرب ليما"}, headers=auth()
    )
    assert r.status_code == 202
    (shown,) = await deliver(2)  # one notification: the correction replaced the alert
    assert shown["title"] == "عاجل · مُحدَّث" and shown["body"] == "زلزال بقوة 6 يضرب ليما"

    r = await stack.http.request(
        "DELETE", f"/v1/items/{item['id']}", json={"reason": "Not confirmed"}, headers=auth()
    )
    assert r.status_code == 202
    assert await deliver(3) == []
    await page.context.close()

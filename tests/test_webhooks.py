"""Webhooks end to end: real worker, real receivers on loopback, real signatures."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.support.helpers import wait_for
from tests.support.receivers import HANG, Hit, receiver
from tests.support.stack import Stack, WorkerRunner, auth, running_stack
from ticker.config import Settings
from ticker.filters import Filter
from ticker.retries import Verdict, backoff, judge, retry_after
from ticker.webhooks.netguard import AddressRefused, is_public, resolve
from ticker.webhooks.store import WebhookStore

FAST = {
    "webhook_allow_private": True,  # the receivers are on loopback
    "webhook_retry_base_seconds": 0.05,
    "webhook_retry_max_seconds": 0.4,
    "webhook_max_attempts": 3,
    "webhook_timeout_seconds": 1.0,
    "webhook_disable_after": 50,
}


@pytest.fixture
async def hooks(settings: Settings) -> AsyncIterator[Stack]:
    async with running_stack(replace(settings, **FAST)) as s:
        yield s


async def register(stack: Stack, url: str, **fields: Any) -> dict[str, Any]:
    r = await stack.http.post("/v1/webhooks", json={"url": url, **fields}, headers=auth("admin"))
    assert r.status_code == 201, r.text
    return dict(r.json())


def plain(event_id: str) -> str:
    """The stream id in an event id: webhooks carry no epoch (ticker.epoch)."""
    return event_id.split(".")[0]


def event_ids(hits: list[Hit]) -> list[str]:
    return [h.json["id"] for h in hits]


async def test_delivery_is_signed_per_standard_webhooks(hooks: Stack) -> None:
    """A delivery carries the stream's envelope, signed so Standard Webhooks verify() accepts
    it with the endpoint's secret (and refuses a tampered body or a rotated-out secret,
    unless the rotation gave the old one a grace period)."""
    async with receiver() as rx:
        hook = await register(hooks, rx.url + "/hook")
        view = await hooks.publish("Signed delivery reaches the receiver")
        await wait_for(lambda: len(rx.acked) == 1, 10, what="the delivery")
        hit = rx.acked[0]
        assert hit.path == "/hook" and hit.headers["content-type"] == "application/json"
        assert Webhook(hook["secret"]).verify(hit.body, hit.headers) == hit.json
        assert hit.headers["webhook-id"] == plain(view["event_id"]) == hit.json["id"]
        assert hit.json["type"] == "item.published" and hit.json["item"]["id"] == view["id"]
        with pytest.raises(WebhookVerificationError):
            Webhook(hook["secret"]).verify(hit.body.replace(b"Signed", b"Forged"), hit.headers)

        r = await hooks.http.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=auth("admin"))
        new_secret = r.json()["secret"]
        assert new_secret != hook["secret"] and new_secret.startswith("whsec_")
        await hooks.publish("Second delivery after rotation")
        await wait_for(lambda: len(rx.acked) == 2, 10, what="the second delivery")
        second = rx.acked[1]
        Webhook(new_secret).verify(second.body, second.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(hook["secret"]).verify(second.body, second.headers)

        # With a grace period both the new and the previous secret verify meanwhile.
        r = await hooks.http.post(
            f"/v1/webhooks/{hook['id']}/rotate-secret",
            json={"grace_seconds": 3600},
            headers=auth("admin"),
        )
        newest = r.json()["secret"]
        await hooks.publish("Third delivery during the grace period")
        await wait_for(lambda: len(rx.acked) == 3, 10, what="the third delivery")
        third = rx.acked[2]
        Webhook(newest).verify(third.body, third.headers)
        Webhook(new_secret).verify(third.body, third.headers)
        r = await hooks.http.post(
            f"/v1/webhooks/{hook['id']}/rotate-secret",
            json={"grace_seconds": -1},
            headers=auth("admin"),
        )
        assert r.status_code == 422 and r.json()["error"]["field"] == "grace_seconds"


async def test_receiver_failing_twice_gets_each_event_once_in_order(hooks: Stack) -> None:
    """A 500 then a timeout on the first event are retried; the receiver acknowledges every
    event exactly once, in stream order, and nothing behind a failing head is sent early."""

    def plan(hit: Hit, n: int) -> int:
        return {1: 500, 2: HANG}.get(n, 200)

    async with receiver(plan) as rx:
        await register(hooks, rx.url)
        published = [await hooks.publish(f"Ordered event number {i}") for i in range(3)]
        expected = [plain(p["event_id"]) for p in published]
        await wait_for(lambda: len(rx.acked) == 3, 15, what="three acknowledged deliveries")
        # Deliveries go in stream order: once a later event is acknowledged, any stray
        # duplicate of the first three would have been sent before it.
        last = plain((await hooks.publish("Ordered event number 3"))["event_id"])
        await wait_for(lambda: len(rx.acked) >= 4, 15, what="the fourth acknowledged")
        assert event_ids(rx.acked) == [*expected, last]
        # The first event was tried three times before the second was sent at all.
        assert event_ids(rx.hits)[:3] == [expected[0]] * 3
        assert event_ids(rx.hits)[3:] == [*expected[1:], last]


async def test_receiver_down_past_budget_ends_in_dead_letters_and_replay_delivers(
    hooks: Stack,
) -> None:
    """After max attempts answered 503 the event is a dead letter (listed with its error);
    replay sends it again and the recovered receiver gets it once."""
    healthy = False

    def plan(hit: Hit, n: int) -> int:
        return 200 if healthy else 503

    async with receiver(plan) as rx:
        hook = await register(hooks, rx.url)
        view = await hooks.publish("Receiver is down for this one")
        dead_url = f"/v1/webhooks/{hook['id']}/dead-letters"

        async def dead() -> list[dict[str, Any]]:
            r = await hooks.http.get(dead_url, headers=auth("admin"))
            return list(r.json()["dead_letters"])

        async def one_dead() -> bool:
            return len(await dead()) == 1

        await wait_for(one_dead, 15, what="a dead letter")
        [letter] = await dead()
        assert plain(letter["event_id"]) == plain(view["event_id"]) and letter["attempts"] == 3
        assert letter["error"] == "HTTP 503" and letter["event"]["item"]["id"] == view["id"]
        assert len(rx.hits) == 3 and not rx.acked
        state = (await hooks.http.get(f"/v1/webhooks/{hook['id']}", headers=auth("admin"))).json()
        assert state["delivery"]["queued"] == 0 and state["delivery"]["dead_letters"] == 1

        healthy = True
        r = await hooks.http.post(dead_url + "/replay", headers=auth("admin"))
        assert r.status_code == 202 and r.json()["replayed"] == [plain(view["event_id"])]
        await wait_for(lambda: len(rx.acked) == 1, 10, what="the replayed delivery")
        assert event_ids(rx.acked) == [plain(view["event_id"])]
        assert await dead() == []
        metrics = (await hooks.http.get("/metrics")).text
        assert 'ticker_webhook_deliveries_total{outcome="dead_letter"} 1.0' in metrics
        assert 'ticker_webhook_deliveries_total{outcome="delivered"} 1.0' in metrics
        assert 'ticker_webhook_failures_total{reason="status_5xx"} 3.0' in metrics


async def test_receiver_not_listening_ends_in_dead_letters_and_replay_delivers(
    hooks: Stack,
) -> None:
    """Connection refused on every attempt also ends in the dead-letter list; once a
    receiver listens on that port, replay delivers the event there once."""
    with socket.socket() as probe:  # a port with nobody listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hook = await register(hooks, f"http://127.0.0.1:{port}/hook")
    view = await hooks.publish("Receiver is not even listening")
    store = WebhookStore(hooks.redis, hooks.keys)

    async def has_dead() -> bool:
        return len(await store.dead_letters(hook["id"])) == 1

    await wait_for(has_dead, 15, what="a dead letter")
    [letter] = await store.dead_letters(hook["id"])
    assert letter["attempts"] == 3 and letter["error"].startswith("connection")
    async with receiver(port=port) as rx:
        url = f"/v1/webhooks/{hook['id']}/dead-letters/replay"
        r = await hooks.http.post(
            url, json={"event_id": plain(view["event_id"])}, headers=auth("admin")
        )
        assert r.status_code == 202
        await wait_for(lambda: len(rx.acked) == 1, 10, what="the replayed delivery")
        assert event_ids(rx.acked) == [plain(view["event_id"])] and rx.acked[0].path == "/hook"


async def test_429_honours_retry_after(settings: Settings) -> None:
    """A 429 with Retry-After: 1 delays the next attempt by that second, not the
    (much shorter) backoff."""
    times: list[float] = []

    def plan(hit: Hit, n: int) -> int | tuple[int, dict[str, str]]:
        times.append(time.monotonic())
        return (429, {"Retry-After": "1"}) if n == 1 else 200

    async with (
        running_stack(replace(settings, **{**FAST, "webhook_retry_max_seconds": 5.0})) as hooks,
        receiver(plan) as rx,
    ):
        await register(hooks, rx.url)
        await hooks.publish("Rate limited receiver")
        await wait_for(lambda: len(rx.acked) == 1, 10, what="the delivery after 429")
        assert times[1] - times[0] >= 0.95


async def test_other_4xx_is_final_and_later_events_flow(hooks: Stack) -> None:
    """A 410 is not retried: the event goes straight to dead letters and the next one
    is delivered."""

    def plan(hit: Hit, n: int) -> int:
        return 410 if n == 1 else 200

    async with receiver(plan) as rx:
        hook = await register(hooks, rx.url)
        first = await hooks.publish("Refused by the receiver")
        second = await hooks.publish("Accepted by the receiver")
        await wait_for(lambda: len(rx.acked) == 1, 10, what="the second delivery")
        assert event_ids(rx.hits) == [plain(first["event_id"]), plain(second["event_id"])]
        r = await hooks.http.get(f"/v1/webhooks/{hook['id']}/dead-letters", headers=auth("admin"))
        [letter] = r.json()["dead_letters"]
        assert letter["attempts"] == 1 and letter["error"] == "HTTP 410"


async def test_persistent_failure_disables_the_endpoint(settings: Settings) -> None:
    """After N consecutive dead letters the endpoint is disabled (no more attempts);
    enabling it again resumes deliveries."""
    async with (
        running_stack(replace(settings, **{**FAST, "webhook_disable_after": 2})) as stack,
        receiver(lambda hit, n: 400 if n <= 2 else 200) as rx,
    ):
        hook = await register(stack, rx.url)
        url = f"/v1/webhooks/{hook['id']}"
        await stack.publish("First refused")
        await stack.publish("Second refused")

        async def disabled() -> bool:
            return (await stack.http.get(url, headers=auth("admin"))).json()["enabled"] is False

        await wait_for(disabled, 10, what="the endpoint to be disabled")
        view = (await stack.http.get(url, headers=auth("admin"))).json()
        assert "2 consecutive dead letters" in view["disabled_reason"]
        await stack.publish("Sent while disabled")
        r = await stack.http.patch(url, json={"enabled": True}, headers=auth("admin"))
        assert r.status_code == 200 and r.json()["enabled"] is True
        after = await stack.publish("Sent after enabling")
        await wait_for(lambda: len(rx.acked) == 1, 10, what="delivery after re-enabling")
        assert event_ids(rx.acked) == [plain(after["event_id"])]
        assert len(rx.hits) == 3  # nothing was attempted while disabled


async def test_filters_choose_events_and_every_change_type_is_delivered(hooks: Stack) -> None:
    """An endpoint gets only events its filter matches, and an item's publish,
    correction and retraction all arrive, in that order."""
    async with receiver() as ar_rx, receiver() as all_rx:
        await register(hooks, ar_rx.url, filter={"editions": ["ar"], "max_urgency": 3})
        await register(hooks, all_rx.url)
        await hooks.publish("English item", edition="en", urgency=1)
        await hooks.publish("خبر عاجل للاختبار", edition="ar", urgency=5)
        ar = await hooks.publish("خبر عاجل آخر مهم", edition="ar", urgency=2)
        r = await hooks.http.patch(
            f"/v1/items/{ar['id']}", json={"headline": "خبر عاجل آخر مصحح"}, headers=auth()
        )
        assert r.status_code == 202
        await hooks.wait_status(ar["id"], "published")
        r = await hooks.http.request(
            "DELETE", f"/v1/items/{ar['id']}", json={"reason": "wrong"}, headers=auth()
        )
        assert r.status_code == 202
        await wait_for(lambda: len(ar_rx.acked) == 3, 10, what="three arabic events")
        types = [h.json["type"] for h in ar_rx.acked]
        assert types == ["item.published", "item.updated", "item.retracted"]
        assert {h.json["item"]["id"] for h in ar_rx.acked} == {ar["id"]}
        await wait_for(lambda: len(all_rx.acked) == 5, 10, what="all five events")
        ids = event_ids(all_rx.acked)
        assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))


async def test_private_addresses_refused_unless_allowed(settings: Settings) -> None:
    """Without TICKER_WEBHOOK_ALLOW_PRIVATE, loopback URLs are refused at registration
    (422 naming url, nothing stored) and at delivery (dead letter, no request made)."""
    strict = replace(settings, **{**FAST, "webhook_allow_private": False})
    async with running_stack(strict) as stack, receiver() as rx:
        for url in (rx.url, f"http://localhost:{rx.port}/", "http://[::1]/", "http://10.1.2.3/"):
            r = await stack.http.post("/v1/webhooks", json={"url": url}, headers=auth("admin"))
            assert r.status_code == 422, url
            assert r.json()["error"]["field"] == "url"
        r = await stack.http.get("/v1/webhooks", headers=auth("admin"))
        assert r.json()["webhooks"] == []
        # Stored behind the API's back (as if DNS changed after registration).
        store = WebhookStore(stack.redis, stack.keys)
        hook = await store.create(
            url=rx.url, filter=Filter(), enabled=True, description="", now="x"
        )
        await stack.publish("Never sent to loopback")

        async def dead() -> list[Any]:
            return await store.dead_letters(hook.id)

        async def has_dead() -> bool:
            return len(await dead()) == 1

        await wait_for(has_dead, 10, what="the refused delivery's dead letter")
        [letter] = await dead()
        assert letter["attempts"] == 1 and letter["error"].startswith("refused")
        assert rx.hits == []


async def test_admin_api_needs_admin_and_names_bad_fields(hooks: Stack) -> None:
    """Only admin keys manage webhooks; bad bodies get a 422 naming the field and
    create nothing; the secret is shown on creation only."""
    r = await hooks.http.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/"}, headers=auth("editor")
    )
    assert r.status_code == 403
    r = await hooks.http.get("/v1/webhooks")
    assert r.status_code == 401
    bad = [
        ({}, "url"),
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "http://127.0.0.1:9/", "filter": {"editions": ["fr"]}}, "filter.editions.0"),
        ({"url": "http://127.0.0.1:9/", "filter": {"max_urgency": 0}}, "filter.max_urgency"),
        (
            {"url": "http://127.0.0.1:9/", "filter": {"categories": ["Bad Slug"]}},
            "filter.categories.0",
        ),
        ({"url": "http://127.0.0.1:9/", "colour": "red"}, "colour"),
        ({"url": "http://127.0.0.1:9/", "enabled": "yes"}, "enabled"),
        ({"url": "http://no-such-host.invalid/"}, "url"),
        ({"url": "http://\x1a/"}, "url"),
    ]
    for body, field in bad:
        r = await hooks.http.post("/v1/webhooks", json=body, headers=auth("admin"))
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["field"] == field, (body, r.text)
    assert (await hooks.http.get("/v1/webhooks", headers=auth("admin"))).json()["webhooks"] == []

    hook = await register(hooks, "http://127.0.0.1:9/", description="bridge")
    url = f"/v1/webhooks/{hook['id']}"
    got = (await hooks.http.get(url, headers=auth("admin"))).json()
    assert "secret" not in got and got["description"] == "bridge"
    r = await hooks.http.patch(url, json={"filter": {"editions": ["xx"]}}, headers=auth("admin"))
    assert r.status_code == 422 and r.json()["error"]["field"] == "filter.editions.0"
    r = await hooks.http.patch(url, json={"filter": {"editions": ["es"]}}, headers=auth("admin"))
    assert r.json()["filter"]["editions"] == ["es"]
    r = await hooks.http.post(
        url + "/dead-letters/replay", json={"event_id": "1-0"}, headers=auth("admin")
    )
    assert r.status_code == 404 and r.json()["error"]["field"] == "event_id"
    r = await hooks.http.post(
        url + "/dead-letters/replay", json={"event_id": "nope"}, headers=auth("admin")
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "event_id"
    assert (await hooks.http.delete(url, headers=auth("admin"))).status_code == 204
    assert (await hooks.http.get(url, headers=auth("admin"))).status_code == 404


async def test_two_workers_deliver_each_event_once_in_order(hooks: Stack) -> None:
    """With two worker processes' dispatchers and delivery jobs racing (and one of them
    stopped halfway), every event still reaches the receiver exactly once, in order."""
    second = WorkerRunner(hooks.settings)
    await second.start()
    try:
        async with receiver(lambda hit, n: 500 if n % 3 == 1 else 200) as rx:
            await register(hooks, rx.url)
            expected = []
            for i, headline in enumerate(DISTINCT):
                expected.append(plain((await hooks.publish(headline))["event_id"]))
                if i == 2:
                    await hooks.worker.stop()  # a worker goes away mid-stream
            await wait_for(lambda: len(rx.acked) == len(DISTINCT), 20, what="every delivery")
            assert event_ids(rx.acked) == expected
    finally:
        await second.stop()


DISTINCT = [
    "Storm closes the harbour in Valparaiso",
    "Parliament passes the water bill",
    "Rail strike halts trains across Norway",
    "Volcano erupts near Catania airport",
    "Heatwave record broken in Seville",
]


def test_address_guard_and_retry_policy_are_pure_rules() -> None:
    """Non-public addresses (private, loopback, link-local, shared, mapped) are refused and
    public ones pass; 2xx delivers, 429/5xx/timeouts retry, other 4xx and refusals are
    final; backoff doubles with jitter up to its cap."""
    for private in ("10.0.0.1", "172.16.3.4", "192.168.1.1", "127.0.0.1", "169.254.169.254",
                    "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
                    "224.0.0.1"):  # fmt: skip
        assert not is_public(private), private
    for public in ("8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"):
        assert is_public(public), public
    assert judge(204).ok
    assert judge(503).retry and judge(None, "timeout").retry and judge(None, "connection").retry
    assert judge(429, None, "7") == Verdict(False, True, "status_429", 7.0)
    assert not judge(404).retry and not judge(301).retry and not judge(None, "refused").retry
    assert judge(None, "dns").retry
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0 and retry_after("soon") is None
    rand = random.Random(1)
    for attempt, step in ((1, 5.0), (2, 10.0), (5, 80.0), (30, 3600.0)):
        delay = backoff(attempt, 5.0, 3600.0, rand)
        assert step / 2 <= delay <= step, (attempt, delay)


async def test_pinned_target_keeps_the_name_for_host_and_tls() -> None:
    """A checked public URL is sent to the resolved address with the original Host header
    and TLS name, so a later DNS change cannot redirect it."""
    target = await resolve("https://93.184.216.34:8443/hook?x=1", allow_private=False)
    assert str(target.url) == "https://93.184.216.34:8443/hook?x=1"
    assert target.host_header == "93.184.216.34:8443" and target.sni_hostname == "93.184.216.34"
    with pytest.raises(AddressRefused) as refused:
        await resolve("http://127.0.0.1:9/", allow_private=False)
    assert refused.value.final  # a decision: not retried
    with pytest.raises(AddressRefused) as unresolved:
        await resolve("http://no-such-host.invalid/", allow_private=False)
    assert not unresolved.value.final  # DNS may recover: retried


async def test_a_hanging_receiver_does_not_delay_another(settings: Settings) -> None:
    """Endpoints are delivered independently: while one receiver holds its request open,
    another gets the same event at once."""
    async with (
        running_stack(replace(settings, **{**FAST, "webhook_timeout_seconds": 20.0})) as hooks,
        receiver(lambda hit, n: HANG) as stuck,
        receiver() as healthy,
    ):
        await register(hooks, stuck.url)
        await register(hooks, healthy.url)
        view = await hooks.publish("Both endpoints want this one")
        await wait_for(lambda: len(stuck.hits) == 1, 10, what="the stuck receiver's request")
        await wait_for(lambda: len(healthy.acked) == 1, 10, what="the healthy delivery")
        assert not stuck.aborted  # the first one is still hanging
        assert event_ids(healthy.acked) == [plain(view["event_id"])]

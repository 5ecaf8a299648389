"""Web Push: subscriptions checked and stored, alerts encrypted, signed and sent in order.

Delivery goes to a fake push service on loopback (bench/push_service.py) that
checks the VAPID signature and decrypts each payload with the browser's key.
"""

from __future__ import annotations

import asyncio
import base64
import multiprocessing
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bench.push_service import Browser, FakePushService, Received, running_push_service
from tests.support.helpers import wait_for, wait_until
from tests.support.stack import Stack, auth, running_stack
from ticker.client.push import Push
from ticker.config import Settings
from ticker.constants import Keys
from ticker.webpush.messages import build_message, topic_of, urgency_of
from workers import webpush as webpush_worker
from workers.http2 import CLOSED_STREAMS, H2Pool, Origin

pytestmark = pytest.mark.slow


@dataclass
class PushStack:
    stack: Stack
    service: FakePushService

    async def subscribe(self, b: Browser, **flt: Any) -> dict[str, Any]:
        body = {"subscription": b.subscription(), "filter": {"edition": "en", **flt}}
        r = await self.stack.http.post("/v1/push/subscriptions", json=body)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    async def messages(self, b: Browser, n: int, timeout: float = 10) -> list[Received]:
        await wait_for(lambda: len(self.service.for_browser(b)) >= n, timeout, what=f"{n} pushes")
        assert not self.service.problems, self.service.problems
        return self.service.for_browser(b)


@pytest.fixture
async def push(settings: Settings) -> AsyncIterator[PushStack]:
    async with running_push_service() as service:
        s = replace(
            settings,
            **service.settings(),
            webpush_retry_base_seconds=0.05,
            webpush_subject="mailto:desk@news.example",
        )
        async with running_stack(s) as stack:
            await sending(stack)
            yield PushStack(stack, service)


async def sending(stack: Stack) -> None:
    """Wait until the worker's sender has taken the lease and placed its cursor (at the
    stream's end: what is published from then on is pushed)."""
    keys, redis = stack.keys, stack.redis
    await wait_for(lambda: redis.exists(keys.webpush_cursor), 10, what="the web push sender")


async def test_vapid_key_is_made_once_and_served(push: PushStack) -> None:
    """The VAPID public key is a P-256 point, made on first use and the same afterwards."""
    first = (await push.stack.http.get("/v1/push/key")).json()["public_key"]
    again = (await push.stack.http.get("/v1/push/key")).json()["public_key"]
    assert first == again
    raw = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))
    assert len(raw) == 65 and raw[0] == 4
    assert await push.stack.redis.hexists(push.stack.keys.webpush_vapid, "private_pem")


async def test_flash_alert_arrives_encrypted_signed_and_over_http2(push: PushStack) -> None:
    """A flash reaches a matching browser decrypted to its headline, with TTL, Urgency, Topic
    and a VAPID JWT the service verifies; a browser of another edition gets nothing."""
    en, ar = push.service.browser(), push.service.browser()
    await push.subscribe(en)
    await push.subscribe(ar, edition="ar")
    key = (await push.stack.http.get("/v1/push/key")).json()["public_key"]
    item = await push.stack.publish("Quake hits Lima", urgency=1, url="https://news.example/lima")
    (msg,) = await push.messages(en, 1)
    assert msg.payload["action"] == "alert"
    assert msg.payload["title"] == "BREAKING"
    assert msg.payload["body"] == "Quake hits Lima"
    assert msg.payload["url"] == "https://news.example/lima"
    assert msg.payload["dir"] == "ltr" and msg.payload["lang"] == "en"
    assert msg.headers["urgency"] == "high"
    assert msg.headers["topic"] == topic_of(item["id"])
    assert 0 < int(msg.headers["ttl"]) <= 28 * 24 * 3600
    assert msg.http_version == "2"
    assert msg.vapid_key == key
    assert push.service.for_browser(ar) == []


async def test_a_flash_to_many_goes_over_several_pooled_connections(
    push: PushStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More browsers than one connection's stream limit: each gets the flash exactly once,
    sent concurrently over a few HTTP/2 connections (not one per message), encrypted in
    the encryption process (started for a deployment of this many; here 100)."""
    monkeypatch.setattr(webpush_worker, "POOL_FROM", 100)
    await _flash_reaches_each_once(push, 250)
    assert 1 < push.service.connections <= 4
    assert len(multiprocessing.active_children()) == 1  # the encryption process


async def test_a_connection_closed_with_goaway_loses_no_alert(settings: Settings) -> None:
    """A push service that ends connections with GOAWAY (as real ones do now and then):
    the streams it did not take are sent again on a new connection, each alert once.
    (The sender encrypts in its own process here: ``webpush_encrypt_processes=0``.)"""
    async with running_push_service() as service:
        s = replace(
            settings,
            **service.settings(),
            webpush_retry_base_seconds=0.05,
            webpush_encrypt_processes=0,
        )
        async with running_stack(s) as stack:
            await sending(stack)
            await _flash_through_goaways(PushStack(stack, service))


async def _flash_through_goaways(push: PushStack) -> None:
    push.service.goaway_after = 40
    await _flash_reaches_each_once(push, 150)
    assert push.service.connections >= 150 // 40


async def _flash_reaches_each_once(push: PushStack, browsers: int) -> None:
    """Subscribe ``browsers`` browsers, publish a flash: each gets it once, checked and
    decrypted by the fake push service."""
    many = [push.service.browser() for _ in range(browsers)]
    for b in many:
        await push.subscribe(b)
    await push.stack.publish("Quake hits Lima", urgency=1)
    await wait_for(lambda: push.service.accepted >= len(many), 30, what=f"{browsers} pushes")
    assert not push.service.problems, push.service.problems
    assert sorted(r.token for r in push.service.received) == sorted(b.token for b in many)


async def test_http2_pool_keeps_to_flow_control_and_stream_limits() -> None:
    """More streams than the server allows per connection and bodies beyond its flow-control
    window: every request is answered, over at most the pool's connections."""
    async with running_push_service() as service:
        pool = H2Pool(ssl.create_default_context(cafile=service.ca_file), connections=3)
        port = int(service.origin.rsplit(":", 1)[1])
        origin = Origin("localhost", port, f"localhost:{port}", "localhost")
        body = bytes(6000)
        try:
            answers = await asyncio.gather(
                *(pool.post(origin, f"/push/none{i}", [], body, 20) for i in range(400))
            )
        finally:
            await pool.aclose()
        assert [status for status, _ in answers] == [404] * 400
        assert service.connections == 3
        assert not service.problems


async def test_http2_pool_lets_go_of_an_old_address_and_of_closed_streams() -> None:
    """A push service met at a new address (its name resolves elsewhere now): once the old
    address's connection has been idle past the pool's limit, the next send closes it and
    forgets the address; a connection that carried thousands of pushes remembers a bounded
    number of its closed streams."""
    async with running_push_service() as service:
        pool = H2Pool(
            ssl.create_default_context(cafile=service.ca_file), connections=1, idle_seconds=1.0
        )
        port = int(service.origin.rsplit(":", 1)[1])
        old, new = (
            Origin(h, port, f"localhost:{port}", "localhost") for h in ("127.0.0.1", "localhost")
        )
        try:
            n = CLOSED_STREAMS + 1000
            for start in range(0, n, 500):
                await asyncio.gather(
                    *(
                        pool.post(old, f"/push/none{i}", [], b"x", 20)
                        for i in range(start, start + 500)
                    )
                )
            (conn,) = pool._pools[old]
            assert len(conn.h2._closed_streams) <= CLOSED_STREAMS < n
            loop = asyncio.get_running_loop()
            await wait_for(lambda: loop.time() - conn.used > 1.0, 5, what="the connection idle")
            status, _ = await pool.post(new, "/push/none", [], b"x", 20)
            assert status == 404
            assert list(pool._pools) == [new]
            assert not conn.usable and conn.transport is not None and conn.transport.is_closing()
        finally:
            await pool.aclose()
        assert service.connections == 2 and not service.problems


async def test_a_killed_encryption_process_loses_no_alert(
    push: PushStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The encryption process killed (the OOM killer, say): the flash still reaches every
    browser, encrypted by the sender itself until a new process is up."""
    monkeypatch.setattr(webpush_worker, "POOL_FROM", 50)
    many = [push.service.browser() for _ in range(120)]
    for b in many:
        await push.subscribe(b)
    await wait_for(lambda: len(multiprocessing.active_children()) == 1, 10, what="the process")
    (child,) = multiprocessing.active_children()
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    await push.stack.publish("Quake hits Lima", urgency=1)
    await wait_for(lambda: push.service.accepted >= len(many), 30, what="120 pushes")
    assert not push.service.problems, push.service.problems
    assert sorted(r.token for r in push.service.received) == sorted(b.token for b in many)


def test_encryption_processes_leave_with_a_killed_sender(tmp_path: Path) -> None:
    """A sender killed outright (SIGKILL) leaves no encryption process behind."""
    script = tmp_path / "sender.py"
    script.write_text(
        "import asyncio, time\n"
        "from workers.sealing import encryption_pool, seal_many\n"
        "async def main():\n"
        "    pool = encryption_pool(1)\n"
        "    await asyncio.get_running_loop().run_in_executor(pool, seal_many, [])\n"
        "    print(*pool._processes, flush=True)\n"
        "    time.sleep(60)\n"
        "if __name__ == '__main__':\n"
        "    asyncio.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    sender = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env)
    try:
        assert sender.stdout is not None
        (child,) = (int(pid) for pid in sender.stdout.readline().split())
        assert Path(f"/proc/{child}").exists()
    finally:
        sender.kill()
        sender.wait()
    wait_until(lambda: not Path(f"/proc/{child}").exists(), 10, what="the child to leave")


async def test_a_sender_that_just_lost_redis_stops_when_the_worker_stops_it(
    settings: Settings,
) -> None:
    """Cancelled while it cleans up after a Redis error (the worker stopping it to start
    again), the sender ends: it once swallowed that cancellation and ran on, so the worker
    waited on it instead of starting again."""
    redis = Redis.from_url(settings.redis_url)
    dropped = asyncio.Event()

    async def xread(*args: Any, **kwargs: Any) -> Any:
        dropped.set()
        raise RedisConnectionError("Connection closed by server.")

    redis.xread = xread  # type: ignore[method-assign]
    ctx: dict[str, Any] = {"settings": settings, "keys": Keys(settings.redis_prefix)}
    ctx["redis"] = redis
    await webpush_worker.start_webpush(ctx)
    sender: asyncio.Task[None] = ctx["webpush_sender"]
    try:
        await dropped.wait()
        sender.cancel()  # as stop_webpush does, in the turn of the loop the error came in
        await asyncio.wait([sender], timeout=5)
        assert sender.cancelled(), "the sender ran on after its cancellation"
    finally:
        await webpush_worker.stop_webpush(ctx)
        await redis.aclose()


async def test_a_service_without_http2_gets_http11(settings: Settings) -> None:
    """A push service that offers only HTTP/1.1 in ALPN still gets its alerts."""
    async with running_push_service(http2=False) as service:
        s = replace(settings, **service.settings())
        async with running_stack(s) as stack:
            await sending(stack)
            b = service.browser()
            body = {"subscription": b.subscription(), "filter": {"edition": "en"}}
            assert (await stack.http.post("/v1/push/subscriptions", json=body)).status_code < 300
            await stack.publish("Quake hits Lima", urgency=1)
            await wait_for(lambda: len(service.received) >= 1, 10, what="a push")
            assert not service.problems, service.problems
            assert service.received[0].http_version == "1.1"
            assert service.received[0].payload["body"] == "Quake hits Lima"


async def test_arabic_alert_is_right_to_left(push: PushStack) -> None:
    """An Arabic flash is labelled in Arabic and marked right-to-left for the notification."""
    ar = push.service.browser()
    await push.subscribe(ar, edition="ar")
    await push.stack.publish("زلزال يضرب ليما", edition="ar", urgency=1)
    (msg,) = await push.messages(ar, 1)
    assert msg.payload["title"] == "عاجل"
    assert msg.payload["dir"] == "rtl" and msg.payload["lang"] == "ar"


async def test_filter_decides_what_is_pushed_in_stream_order(push: PushStack) -> None:
    """Routine items and other sections are not pushed; what is pushed arrives in order."""
    b = push.service.browser()
    await push.subscribe(b, max_urgency=2, categories=["world"])
    await push.stack.publish("Routine world item", urgency=5, categories=["world"])
    await push.stack.publish("Flash sport item", urgency=1, categories=["sport"])
    await push.stack.publish("First world flash", urgency=1, categories=["world"])
    await push.stack.publish("Second world flash", urgency=2, categories=["world"])
    got = await push.messages(b, 2)
    assert [m.payload["body"] for m in got] == ["First world flash", "Second world flash"]
    assert [m.headers["urgency"] for m in got] == ["high", "high"]


async def test_correction_replaces_and_retraction_withdraws(push: PushStack) -> None:
    """A correction alerts again under the same Topic; a retraction sends a withdrawal
    under it too, after the alerts, so the service worker closes the notification."""
    b = push.service.browser()
    await push.subscribe(b)
    item = await push.stack.publish("Two killed in Jenin raid", urgency=1)
    h = auth()
    r = await push.stack.http.patch(
        f"/v1/items/{item['id']}", json={"headline": "Three killed in Jenin raid"}, headers=h
    )
    assert r.status_code == 202
    r = await push.stack.http.request(
        "DELETE", f"/v1/items/{item['id']}", json={"reason": "Not confirmed"}, headers=h
    )
    assert r.status_code == 202
    alert, update, withdraw = await push.messages(b, 3)
    assert [m.payload["action"] for m in (alert, update, withdraw)] == [
        "alert",
        "alert",
        "withdraw",
    ]
    assert update.payload["body"] == "Three killed in Jenin raid" and update.payload["updated"]
    assert {m.headers["topic"] for m in (alert, update, withdraw)} == {topic_of(item["id"])}
    assert withdraw.payload["tag"] == alert.payload["tag"]
    assert "body" not in withdraw.payload  # a withdrawal carries no text


async def test_repeat_subscription_updates_and_delete_removes(push: PushStack) -> None:
    """The same endpoint again is an update of one subscription; DELETE forgets it."""
    b = push.service.browser()
    first = await push.subscribe(b, max_urgency=1)
    again = await push.subscribe(b, max_urgency=3)
    assert (first["status"], again["status"]) == ("created", "updated")
    assert first["id"] == again["id"]
    subs = push.stack.keys.webpush_subscriptions
    assert await push.stack.redis.hlen(subs) == 1
    r = await push.stack.http.delete(f"/v1/push/subscriptions/{first['id']}")
    assert r.status_code == 204
    assert await push.stack.redis.hlen(subs) == 0
    r = await push.stack.http.delete(f"/v1/push/subscriptions/{first['id']}")
    assert r.status_code == 404 and r.json()["error"]["field"] == "id"


async def test_gone_subscription_is_removed(push: PushStack) -> None:
    """A 410 from the push service (the browser unsubscribed) deletes the subscription."""
    gone, kept = push.service.browser(), push.service.browser()
    gone.answers = [(410, {})]
    await push.subscribe(gone)
    kept_id = (await push.subscribe(kept))["id"]
    await push.stack.publish("Flash one", urgency=1)
    await push.messages(kept, 1)
    subs = push.stack.keys.webpush_subscriptions

    async def counted() -> bool:
        return await push.stack.redis.hget(push.stack.keys.stats, "webpush|gone") == b"1"

    await wait_for(counted, 5, what="the gone subscription to be counted")
    assert await push.stack.redis.hkeys(subs) == [kept_id.encode()]


async def test_429_and_5xx_are_retried_until_delivered_once(push: PushStack) -> None:
    """429 (with Retry-After) and 503 are retried with backoff; the alert arrives once."""
    b = push.service.browser()
    b.answers = [(429, {"retry-after": "1"}), (503, {})]
    await push.subscribe(b)
    await push.stack.publish("Flash retried", urgency=1)
    (msg,) = await push.messages(b, 1, timeout=15)
    assert msg.payload["body"] == "Flash retried"
    assert [s for _, s in push.service.refused] == [429, 503]

    async def counted() -> bool:
        return await push.stack.redis.hget(push.stack.keys.stats, "webpush|sent") == b"1"

    await wait_for(counted, 5, what="the delivery to be counted")
    stats = await push.stack.redis.hgetall(push.stack.keys.stats)
    assert int(stats[b"webpush|retried"]) == 2 and int(stats[b"webpush|sent"]) == 1


async def test_embargoed_and_duplicate_items_never_push(push: PushStack) -> None:
    """An embargoed item and a duplicate post make no push; the next flash does."""
    b = push.service.browser()
    await push.subscribe(b)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await push.stack.post(
        {"headline": "Embargoed flash", "edition": "en", "urgency": 1, "embargoed_until": later}
    )
    assert r.status_code == 202
    await push.stack.wait_status(r.json()["id"], "embargoed")
    await push.stack.publish("Flash once", urgency=1)
    r = await push.stack.post({"headline": "Flash once", "edition": "en", "urgency": 1})
    await push.stack.wait_status(r.json()["id"], "duplicate")
    await push.stack.publish("Next flash", urgency=1)
    got = await push.messages(b, 2)
    assert [m.payload["body"] for m in got] == ["Flash once", "Next flash"]


@pytest.mark.parametrize(
    ("field", "change", "status"),
    [
        ("subscription.endpoint", {"endpoint": "not a url"}, 422),
        ("subscription.endpoint", {"endpoint": "http://localhost/push/x"}, 422),
        ("subscription.endpoint", {"endpoint": "https://evil.example/push/x"}, 422),
        ("subscription.keys.p256dh", {"keys": {"p256dh": "AAAA", "auth": "A" * 22}}, 422),
        ("subscription.keys.p256dh", {"keys": {"p256dh": "BA" + "A" * 85, "auth": "A" * 22}}, 422),
        ("subscription.keys.auth", {"keys": {"p256dh": None, "auth": "AAAA"}}, 422),
        ("subscription.keys.p256dh", {"keys": {"p256dh": "x+/y", "auth": "A" * 22}}, 422),
    ],
)
async def test_bad_subscriptions_are_refused_and_never_stored(
    push: PushStack, field: str, change: dict[str, Any], status: int
) -> None:
    """Malformed endpoints, non-https, unknown services and wrong key lengths get a 4xx
    naming the field, and nothing is stored."""
    b = push.service.browser()
    sub = b.subscription()
    if "keys" in change and change["keys"]["p256dh"] is None:
        change = {"keys": {**change["keys"], "p256dh": sub["keys"]["p256dh"]}}
    body = {"subscription": {**sub, **change}, "filter": {"edition": "en"}}
    r = await push.stack.http.post("/v1/push/subscriptions", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field
    assert await push.stack.redis.hlen(push.stack.keys.webpush_subscriptions) == 0


async def test_bad_filters_are_refused(push: PushStack) -> None:
    """An unknown edition or an urgency out of range is a 422 naming the filter field."""
    b = push.service.browser()
    for flt, field in [
        ({"edition": "xx"}, "filter.edition"),
        ({"edition": "en", "max_urgency": 0}, "filter.max_urgency"),
        ({"edition": "en", "colour": "red"}, "filter.colour"),
    ]:
        body = {"subscription": b.subscription(), "filter": flt}
        r = await push.stack.http.post("/v1/push/subscriptions", json=body)
        assert r.status_code == 422 and r.json()["error"]["field"] == field


async def test_endpoint_on_a_private_address_is_refused(settings: Settings) -> None:
    """With private addresses not allowed, an endpoint that resolves to loopback is refused."""
    s = replace(settings, webpush_allowed_hosts=("*",), webpush_allow_private=False)
    async with running_push_service() as service, running_stack(s) as stack:
        b = service.browser()
        body = {"subscription": b.subscription(), "filter": {"edition": "en"}}
        r = await stack.http.post("/v1/push/subscriptions", json=body)
        assert r.status_code == 422
        assert r.json()["error"]["field"] == "subscription.endpoint"
        assert "non-public" in r.json()["error"]["message"]
        assert await stack.redis.hlen(stack.keys.webpush_subscriptions) == 0


def test_expired_items_are_not_alerted_late() -> None:
    """An alert for an item past its expiry is not built; a withdrawal still is."""
    now = datetime.now(UTC)
    item = {
        "id": "a" * 32,
        "headline": "Old news",
        "edition": "en",
        "urgency": 1,
        "expires_at": (now - timedelta(seconds=1)).isoformat(),
    }
    assert build_message(Push("alert", item, "1-0", "item.published"), now) is None
    assert build_message(Push("withdraw", item, "2-0", "item.retracted"), now) is not None


def test_urgency_mapping() -> None:
    """IPTC urgency maps to RFC 8030 Urgency: flashes high, routine low or very-low."""
    assert [urgency_of(u) for u in range(1, 10)] == [
        "high", "high", "normal", "normal", "low", "low", "very-low", "very-low", "very-low",
    ]  # fmt: skip


def test_endpoint_splits_into_origin_and_path() -> None:
    """The sender's origin (pooled connections, VAPID audience) and request path."""
    split = webpush_worker._split
    assert split("https://fcm.googleapis.com/fcm/send/a:b") == (
        "https://fcm.googleapis.com",
        "/fcm/send/a:b",
    )
    assert split("https://h:8443/push/x?y=1") == ("https://h:8443", "/push/x?y=1")
    assert split("https://h?x=1") == ("https://h", "/?x=1")
    assert split("https://h") == ("https://h", "/")

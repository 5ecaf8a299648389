"""The push bridge: FCM/APNs payloads, and a real bridge process killed and restarted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import wait_for
from tests.support.receivers import HANG, Hit, Receiver, receiver
from tests.support.stack import Stack, auth
from ticker.client.bridge import Bridge, BridgeConfig
from ticker.client.push import apns_request, fcm_message, plan
from ticker.filters import Filter

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def item(**fields: Any) -> dict[str, Any]:
    return {
        "id": "a" * 32,
        "version": 1,
        "headline": "At least 60 dead in shipwreck off Yemen: IOM",
        "edition": "en",
        "categories": ["world"],
        "regions": ["mena"],
        "urgency": 1,
        "url": "https://example.com/yemen",
        "expires_at": (NOW + timedelta(hours=2)).isoformat().replace("+00:00", "Z"),
        **fields,
    }


def test_alert_payloads_map_the_item_for_fcm_and_apns() -> None:
    """An urgent English item becomes a high-priority FCM v1 message and APNs alert with
    the BREAKING title, the headline, the item id as collapse id and the expiry as TTL."""
    [push] = plan("item.published", "1-0", {"item": item()}, Filter())
    msg = fcm_message(push, topic="breaking-en", now=NOW)["message"]
    assert msg["topic"] == "breaking-en"
    assert msg["notification"] == {
        "title": "BREAKING",
        "body": "At least 60 dead in shipwreck off Yemen: IOM",
    }
    assert msg["android"] == {
        "collapse_key": "a" * 32,
        "priority": "HIGH",
        "ttl": "7200s",
        "notification": {"tag": "a" * 32},
    }
    assert msg["data"]["item_id"] == "a" * 32 and msg["data"]["event_id"] == "1-0"
    assert all(isinstance(v, str) for v in msg["data"].values())
    headers, body = apns_request(push, topic="com.example.news", now=NOW)
    assert headers == {
        "apns-push-type": "alert",
        "apns-priority": "10",
        "apns-topic": "com.example.news",
        "apns-collapse-id": "a" * 32,
        "apns-expiration": str(int((NOW + timedelta(hours=2)).timestamp())),
    }
    assert body["aps"]["alert"] == msg["notification"]
    assert body["aps"]["thread-id"] == "world" and body["aps"]["sound"] == "default"


@pytest.mark.parametrize(("edition", "title"), [("ar", "عاجل"), ("es", "ÚLTIMA HORA")])
def test_titles_follow_the_edition_and_low_urgency_is_normal_priority(
    edition: str, title: str
) -> None:
    """Arabic and Spanish items get their edition's label; urgency 5 is normal priority
    without sound."""
    [push] = plan("item.published", "1-0", {"item": item(edition=edition, urgency=5)}, Filter())
    msg = fcm_message(push, topic="t", now=NOW)["message"]
    assert msg["notification"]["title"] == title and msg["android"]["priority"] == "NORMAL"
    headers, body = apns_request(push, topic="t", now=NOW)
    assert headers["apns-priority"] == "5" and "sound" not in body["aps"]


def test_retractions_and_updates_out_of_the_filter_withdraw() -> None:
    """A retraction, an expiry, or an update that leaves the bridge's filter sends a silent
    withdrawal (data-only FCM, background APNs); an update inside the filter re-alerts
    under the same collapse id."""
    f = Filter(editions=frozenset({"en"}), categories=frozenset({"world"}))
    subject = {k: item()[k] for k in ("id", "version", "edition", "categories", "urgency")}
    moved = item(categories=["sport"], version=2)
    corrected = item(headline="At least 61 dead", version=2)
    cases = [
        ("item.retracted", {"item": subject, "reason": "wrong"}, "withdraw"),
        ("item.expired", {"item": subject, "reason": "expired"}, "withdraw"),
        ("item.updated", {"item": moved, "previous": subject}, "withdraw"),
        ("item.updated", {"item": corrected, "previous": subject}, "alert"),
    ]
    for event_type, data, action in cases:
        [push] = plan(event_type, "2-0", data, f)
        assert push.action == action, event_type
        msg = fcm_message(push, topic="t", now=NOW)["message"]
        headers, body = apns_request(push, topic="t", now=NOW)
        if action == "withdraw":
            assert "notification" not in msg and msg["data"]["action"] == "withdraw"
            assert headers["apns-push-type"] == "background" and headers["apns-priority"] == "5"
            assert body["aps"] == {"content-available": 1} and body["item_id"] == "a" * 32
        else:
            assert msg["android"]["collapse_key"] == "a" * 32
            assert msg["notification"]["body"] == "At least 61 dead"
    assert plan("snapshot", "3-0", {"items": []}, f) == []


def fcm_bodies(rx: Receiver) -> list[str]:
    return [
        h.json["message"]
        .get("notification", {})
        .get("body", "withdraw:" + h.json["message"]["data"]["item_id"])
        for h in rx.acked
    ]


def apns_bodies(rx: Receiver) -> list[str]:
    return [
        h.json["aps"].get("alert", {}).get("body", "withdraw:" + h.json["item_id"])
        for h in rx.acked
    ]


async def test_bridge_pushes_publish_correction_and_retraction_to_fake_receivers(
    stack: Stack, tmp_path: Path
) -> None:
    """The bridge posts each change of an English item to FCM (with its bearer token and
    project path) and to every APNs device (with topic and token), in order, and
    ignores other editions."""
    async with receiver() as fcm, receiver() as apns:
        config = BridgeConfig(
            base_url=stack.base,
            state_file=str(tmp_path / "bridge.json"),
            editions=["en"],
            fcm_url=fcm.url,
            fcm_project="demo-app",
            fcm_topic="breaking-en",
            fcm_token="fcm-access-token",
            apns_url=apns.url,
            apns_topic="com.example.news",
            apns_token="provider-jwt",
            apns_devices=["device-one", "device-two"],
        )
        task = asyncio.create_task(Bridge(config).run())
        try:
            await wait_for(lambda: (tmp_path / "bridge.json").exists(), 10, what="the snapshot")
            await stack.publish("خبر عاجل لا يخص هذا الجسر", edition="ar")
            view = await stack.publish("Dam bursts after heavy rain in Libya", urgency=1)
            r = await stack.http.patch(
                f"/v1/items/{view['id']}",
                json={"headline": "Dam bursts after heavy rain in Derna, Libya"},
                headers=auth(),
            )
            assert r.status_code == 202
            await stack.wait_status(view["id"], "published")
            await wait_for(lambda: len(fcm.acked) == 2, 10, what="the correction's push")
            r = await stack.http.request(
                "DELETE", f"/v1/items/{view['id']}", json={"reason": "unconfirmed"}, headers=auth()
            )
            assert r.status_code == 202
            await wait_for(lambda: len(fcm.acked) == 3 and len(apns.acked) == 6, 10, what="all")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        withdraw = "withdraw:" + view["id"]
        assert fcm_bodies(fcm) == [
            "Dam bursts after heavy rain in Libya",
            "Dam bursts after heavy rain in Derna, Libya",
            withdraw,
        ]
        for hit in fcm.acked:
            assert hit.path == "/v1/projects/demo-app/messages:send"
            assert hit.headers["authorization"] == "Bearer fcm-access-token"
            assert hit.json["message"]["topic"] == "breaking-en"
            assert hit.json["message"]["android"]["collapse_key"] == view["id"]
        assert fcm.acked[0].json["message"]["android"]["priority"] == "HIGH"
        assert apns_bodies(apns) == [b for b in fcm_bodies(fcm) for _ in range(2)]
        assert [h.path for h in apns.acked[:2]] == ["/3/device/device-one", "/3/device/device-two"]
        for hit in apns.acked:
            assert hit.headers["apns-topic"] == "com.example.news"
            assert hit.headers["authorization"] == "bearer provider-jwt"
        assert apns.acked[0].headers["apns-collapse-id"] == view["id"]


HEADLINES = [
    "Storm closes the harbour in Valparaiso",
    "Parliament passes the water bill",
    "Rail strike halts trains across Norway",  # in flight when the bridge is killed
    "Volcano erupts near Catania airport",  # published while it is down
    "Heatwave record broken in Seville",
    "Ferry sinks off the coast of Lombok",  # published while it is down again
]


@pytest.mark.timeout(180)
@pytest.mark.slow
async def test_bridge_killed_and_restarted_misses_nothing_and_repeats_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    """A bridge process killed with SIGKILL mid-push and again while idle, then restarted,
    gets every item to FCM and APNs exactly once (as acknowledged), in order."""
    hung: list[Hit] = []

    def fcm_plan(hit: Hit, n: int) -> int:
        body = hit.json["message"]["notification"]["body"]
        if body == HEADLINES[2] and not hung:
            hung.append(hit)
            return HANG  # the push service never answers: the bridge dies waiting
        return 200

    state = tmp_path / "bridge-state.json"
    env = {
        **os.environ,
        "TICKER_BRIDGE_FCM_TOKEN": "fcm-access-token",
        "TICKER_BRIDGE_APNS_TOKEN": "provider-jwt",
    }
    async with receiver(fcm_plan) as fcm, receiver() as apns:
        cmd = [
            sys.executable, "-m", "ticker.client.bridge",
            "--base", stack.base, "--state", str(state),
            "--edition", "en", "--fcm-url", fcm.url, "--fcm-project", "demo",
            "--fcm-topic", "breaking-en", "--apns-url", apns.url,
            "--apns-topic", "com.example.news", "--apns-device", "device-one",
        ]  # fmt: skip
        procs: list[asyncio.subprocess.Process] = []

        async def start() -> None:
            procs.append(await asyncio.create_subprocess_exec(*cmd, env=env))

        async def kill() -> None:
            procs[-1].kill()
            await procs[-1].wait()

        def done(n: int) -> bool:
            return len(fcm.acked) >= n and len(apns.acked) >= n

        try:
            await start()
            await wait_for(state.exists, 30, what="the bridge to take its snapshot")
            await stack.publish(HEADLINES[0])
            await stack.publish(HEADLINES[1])
            await wait_for(lambda: done(2), 15, what="the first two pushes")
            await stack.publish(HEADLINES[2])
            await wait_for(lambda: bool(hung), 15, what="the third push to be in flight")
            await kill()
            await wait_for(lambda: fcm.aborted == hung, 10, what="the receiver to see it drop")
            await stack.publish(HEADLINES[3])
            await start()
            fifth = await stack.publish(HEADLINES[4])
            await wait_for(lambda: done(5), 30, what="five pushes after the restart")

            def handled() -> bool:  # the bridge has recorded the fifth: it is idle now
                return bool(json.loads(state.read_text())["last_id"] == fifth["event_id"])

            await wait_for(handled, 10, what="the bridge to save its cursor")
            await kill()
            await stack.publish(HEADLINES[5])
            await start()
            await wait_for(lambda: done(6), 30, what="the sixth push")
            procs[-1].terminate()
            assert await asyncio.wait_for(procs[-1].wait(), 15) == 0
        finally:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    await p.wait()
        assert fcm_bodies(fcm) == HEADLINES
        assert apns_bodies(apns) == HEADLINES
        assert len(fcm.hits) == len(HEADLINES) + 1  # the one in flight, sent again


async def test_bridge_reconciles_after_a_reset(stack: Stack, tmp_path: Path) -> None:
    """A bridge away longer than the stream keeps events gets a reset: it withdraws what it
    pushed that is gone, re-alerts what changed, pushes what is new, and skips the rest."""
    state = tmp_path / "bridge.json"
    async with receiver() as fcm:
        config = BridgeConfig(
            base_url=stack.base, state_file=str(state), fcm_url=fcm.url, fcm_project="p"
        )

        @contextlib.asynccontextmanager
        async def running() -> Any:
            task = asyncio.create_task(Bridge(config).run())
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        async with running():
            await wait_for(state.exists, 10, what="the snapshot")
            kept = await stack.publish(HEADLINES[0])
            gone = await stack.publish(HEADLINES[1])
            changed = await stack.publish(HEADLINES[2])
            await wait_for(lambda: len(fcm.acked) == 3, 10, what="three pushes")
            await wait_for(
                lambda: json.loads(state.read_text())["last_id"] == changed["event_id"],
                10,
                what="the cursor to be saved",
            )
        r = await stack.http.request(
            "DELETE", f"/v1/items/{gone['id']}", json={"reason": "wrong"}, headers=auth()
        )
        assert r.status_code == 202
        r = await stack.http.patch(
            f"/v1/items/{changed['id']}", json={"headline": HEADLINES[3]}, headers=auth()
        )
        assert r.status_code == 202
        await stack.wait_status(gone["id"], "retracted")
        await stack.wait_status(changed["id"], "published")
        new = await stack.publish(HEADLINES[4])
        await stack.redis.xtrim(stack.keys.events, maxlen=0, approximate=False)
        async with running():
            await wait_for(lambda: len(fcm.acked) == 6, 10, what="the reconciling pushes")
        assert fcm_bodies(fcm)[3:] == ["withdraw:" + gone["id"], HEADLINES[3], HEADLINES[4]]
        assert kept["id"] not in {h.json["message"]["data"]["item_id"] for h in fcm.acked[3:]}
        assert new["id"] == fcm.acked[5].json["message"]["data"]["item_id"]


async def test_bridge_retries_transient_push_failures_in_order_and_skips_bad_requests(
    stack: Stack, tmp_path: Path
) -> None:
    """503, 429 and 401 answers are retried while the stream waits (order kept); a 400
    (a payload the service will never take) is skipped, and later items still go out."""
    answers = iter([503, (429, {"Retry-After": "0"}), 401, 200, 400, 200])

    async with receiver(lambda hit, n: next(answers)) as fcm:
        config = BridgeConfig(
            base_url=stack.base,
            state_file=str(tmp_path / "s.json"),
            fcm_url=fcm.url,
            fcm_project="p",
            fcm_token="t",
            retry_base=0.05,
        )
        task = asyncio.create_task(Bridge(config).run())
        try:
            await wait_for((tmp_path / "s.json").exists, 10, what="the snapshot")
            for headline in HEADLINES[:3]:
                await stack.publish(headline)
            await wait_for(lambda: len(fcm.hits) == 6, 15, what="six attempts")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        bodies = [h.json["message"]["notification"]["body"] for h in fcm.hits]
        assert bodies == [HEADLINES[0]] * 4 + [HEADLINES[1], HEADLINES[2]]
        assert fcm_bodies(fcm) == [HEADLINES[0], HEADLINES[2]]

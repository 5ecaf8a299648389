"""The reference push bridge: the ticker stream to FCM and APNs.

    ticker bridge --base https://ticker.example --edition en --state /var/lib/bridge.json \\
        --fcm-url https://fcm.googleapis.com --fcm-project my-app --fcm-topic breaking-en \\
        --apns-url https://api.push.apple.com --apns-topic com.example.news --apns-device <token>

Tokens come from ``TICKER_BRIDGE_FCM_TOKEN`` (an OAuth access token) and
``TICKER_BRIDGE_APNS_TOKEN`` (a provider JWT) rather than the command line.

Every event is handled once, in order, across restarts: the client's file
cursor moves past an event only after its pushes were accepted (or refused
for good), and the bridge's own record of what it pushed is saved with it.
A kill between a push service's answer and that save (a few microseconds)
resends the one event, with the same collapse id, so the device replaces the
notification rather than showing it twice. Transient push failures (network,
5xx, 429) are retried with backoff, holding the stream so order is kept, and
so are 401/403 (a credential to fix: nothing is dropped meanwhile); other 4xx
are logged and skipped (a bad device token or payload will not get better).

On first start the bridge sends nothing for the snapshot (no blast of old
items). After a ``reset`` (it was away longer than the stream keeps events)
it pushes the snapshot's items it has not pushed yet that changed since its
cursor, and withdraws the ones it pushed that are gone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from ticker.client.client import FileCursor, StreamEvent, StreamRefused, TickerClient
from ticker.client.push import Push, apns_request, fcm_message, plan
from ticker.events import parse_stream_id
from ticker.filters import Filter
from ticker.retries import backoff, judge

__all__ = ["Bridge", "BridgeConfig", "main"]

log = logging.getLogger("ticker.client.bridge")
PUSHED_MAX = 1000  # items remembered (id -> version) for reconciling after a reset


@dataclass
class BridgeConfig:
    base_url: str
    state_file: str
    editions: Sequence[str] = ()
    categories: Sequence[str] = ()
    regions: Sequence[str] = ()
    max_urgency: int = 9
    transport: str = "sse"
    fcm_url: str | None = None
    fcm_project: str = ""
    fcm_topic: str = "breaking"
    fcm_token: str = ""
    apns_url: str | None = None
    apns_topic: str = ""
    apns_token: str = ""
    apns_devices: Sequence[str] = field(default_factory=list)
    timeout: float = 10.0
    retry_base: float = 0.5  # first retry delay of a failed push; doubles, with jitter
    retry_max: float = 60.0

    @property
    def filter(self) -> Filter:
        return Filter(
            frozenset(self.editions),
            frozenset(self.categories),
            frozenset(self.regions),
            self.max_urgency,
        )


class Bridge:
    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.cursor = FileCursor(config.state_file)
        self.pushed: dict[str, int] = self.cursor.state.setdefault("pushed", {})
        self.client = TickerClient(
            config.base_url,
            editions=config.editions,
            categories=config.categories,
            regions=config.regions,
            max_urgency=config.max_urgency,
            transport="ws" if config.transport == "ws" else "sse",
            cursor=self.cursor,
        )

    async def run(self) -> None:
        # http2 for APNs (it requires it); plain-http test receivers get HTTP/1.1.
        async with httpx.AsyncClient(http2=True, timeout=self.config.timeout) as http:
            self.http = http
            reset_from: str | None = None
            async for event in self.client.events():
                if event.type == "reset":
                    reset_from = self.client.last_id
                    continue
                if event.type == "snapshot":
                    pushes = self._reconcile(event, reset_from) if reset_from else []
                    reset_from = None
                else:
                    pushes = plan(event.type, event.id, event.data, self.config.filter)
                for push in pushes:
                    await self.send(push)
                    self._remember(push)
                # The client saves the cursor (and self.pushed) when we ask for the next.

    def _reconcile(self, snapshot: StreamEvent, since_id: str) -> list[Push]:
        since_ms = parse_stream_id(since_id)[0]
        items = list(reversed(snapshot.data.get("items") or []))  # oldest first
        live = {item["id"] for item in items}
        out = [
            Push("withdraw", {"id": item_id}, snapshot.id, "reset")
            for item_id in list(self.pushed)
            if item_id not in live
        ]
        for item in items:
            changed = _ms(item.get("updated_at")) >= since_ms
            if changed and self.pushed.get(item["id"]) != item.get("version"):
                out.append(Push("alert", item, snapshot.id, "item.published"))
        return out

    def _remember(self, push: Push) -> None:
        self.pushed.pop(push.item_id, None)
        if push.action == "alert":
            self.pushed[push.item_id] = int(push.item.get("version") or 1)
            while len(self.pushed) > PUSHED_MAX:
                self.pushed.pop(next(iter(self.pushed)))

    async def send(self, push: Push) -> None:
        """Deliver one push to every configured service, each until it is accepted."""
        c = self.config
        now = datetime.now(UTC)
        if c.fcm_url:
            url = f"{c.fcm_url.rstrip('/')}/v1/projects/{c.fcm_project}/messages:send"
            body = fcm_message(push, topic=c.fcm_topic, now=now)
            auth = {"authorization": f"Bearer {c.fcm_token}"} if c.fcm_token else {}
            await self._post("fcm", url, auth, body)
        if c.apns_url:
            headers, body = apns_request(push, topic=c.apns_topic, now=now)
            if c.apns_token:
                headers["authorization"] = f"bearer {c.apns_token}"
            for device in c.apns_devices:
                url = f"{c.apns_url.rstrip('/')}/3/device/{device}"
                await self._post("apns", url, headers, body)

    async def _post(self, service: str, url: str, headers: dict[str, str], body: Any) -> None:
        attempt = 0
        while True:
            attempt += 1
            status = 0
            try:
                r = await self.http.post(url, json=body, headers=headers)
                status = r.status_code
                verdict = judge(r.status_code, None, r.headers.get("retry-after"))
                detail = f"HTTP {r.status_code}"
            except httpx.TimeoutException:
                verdict, detail = judge(None, "timeout"), "timeout"
            except httpx.HTTPError as exc:
                verdict, detail = judge(None, "connection"), f"{type(exc).__name__}"
            if verdict.ok:
                return
            if status in (401, 403):
                # A credential problem: hold the stream (nothing is lost) until the
                # token is fixed, rather than dropping every push meanwhile.
                log.error("%s rejected the credentials (%s); fix the token", service, detail)
            elif not verdict.retry:
                log.error("%s refused the push (%s); skipping it", service, detail)
                return
            delay = verdict.delay or backoff(attempt, self.config.retry_base, self.config.retry_max)
            log.warning("%s push failed (%s); retrying in %.1fs", service, detail, delay)
            await asyncio.sleep(min(delay, self.config.retry_max))


def _ms(value: Any) -> int:
    if not value:
        return 0
    return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)


def _csv(values: list[str] | None) -> list[str]:
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


def parser() -> argparse.ArgumentParser:
    from ticker.helpformat import HelpFormatter

    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="ticker bridge",
        description="Ticker stream to FCM/APNs.",
        epilog="Tokens come from the environment, never the command line: "
        "TICKER_BRIDGE_FCM_TOKEN (an OAuth 2 access token for FCM) and "
        "TICKER_BRIDGE_APNS_TOKEN (a provider JWT for APNs).",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--base", required=True, help="the ticker's base URL")
    p.add_argument("--state", required=True, help="cursor file (kept across restarts)")
    p.add_argument("--edition", action="append", help="editions (repeat or comma list)")
    p.add_argument("--category", action="append", help="categories (repeat or comma list)")
    p.add_argument("--region", action="append", help="regions (repeat or comma list)")
    p.add_argument("--max-urgency", type=int, default=9, help="push items up to this urgency")
    p.add_argument("--transport", choices=["sse", "ws"], default="sse", help="stream to read")
    p.add_argument("--fcm-url", help="e.g. https://fcm.googleapis.com")
    p.add_argument("--fcm-project", default="", help="the Firebase project id")
    p.add_argument("--fcm-topic", default="breaking", help="FCM topic to push to")
    p.add_argument("--apns-url", help="e.g. https://api.push.apple.com")
    p.add_argument("--apns-topic", default="", help="the app's bundle id")
    p.add_argument("--apns-device", action="append", default=[], help="device token (repeat)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per push request")
    p.add_argument("--log-level", default=env("TICKER_LOG_LEVEL", "info"), help="TICKER_LOG_LEVEL")
    return p


def config_of(args: argparse.Namespace) -> BridgeConfig:
    env = os.environ.get
    return BridgeConfig(
        base_url=args.base,
        state_file=args.state,
        editions=_csv(args.edition),
        categories=_csv(args.category),
        regions=_csv(args.region),
        max_urgency=args.max_urgency,
        transport=args.transport,
        fcm_url=args.fcm_url,
        fcm_project=args.fcm_project,
        fcm_topic=args.fcm_topic,
        fcm_token=env("TICKER_BRIDGE_FCM_TOKEN", ""),
        apns_url=args.apns_url,
        apns_topic=args.apns_topic,
        apns_token=env("TICKER_BRIDGE_APNS_TOKEN", ""),
        apns_devices=_csv(args.apns_device),
        timeout=args.timeout,
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per push
    bridge = Bridge(config_of(args))

    async def run() -> None:
        task = asyncio.create_task(bridge.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(run())
    except StreamRefused as exc:
        log.error("the ticker refused the stream: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

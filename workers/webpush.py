"""Web Push delivery: one sender per deployment, following the event stream in order.

Why this shape:

- The **sender** reads the event stream (the source of truth) from a cursor
  kept in Redis, like the webhook dispatcher, so a worker that was down resumes
  where the cursor stands. One worker process at a time sends (it holds a
  lease, renewed while it works; another process takes over if it dies), so a
  correction or a withdrawal never overtakes the alert it replaces.
- An event is sent to every subscription whose filter it matches, encrypted
  per subscription (RFC 8291 needs a fresh key each time), with
  ``webpush_concurrency`` sends in flight over pooled HTTP/2 connections.
- Outcomes: 2xx sent; 404/410 the browser unsubscribed, so the subscription
  is deleted; 429, 5xx, timeouts and connection errors are retried with
  backoff (and ``Retry-After``) from a sorted set of due retries, up to
  ``webpush_max_attempts``; other 4xx count as failed. A retry is dropped
  when its item has since changed, been retracted or expired, so it never
  overtakes a newer message. Outcomes are counted (``ticker_webpush_messages``).
- Only ``item.published`` and ``item.updated`` alert and only
  ``item.retracted`` withdraws: embargoed, held and duplicate items make no
  event, and an expired item is simply not alerted any more (the TTL already
  bounds how long a push service keeps its alert).
- At least once: a sender that dies mid-event leaves the cursor before it, and
  the next one sends that event again. The ``Topic`` and the notification tag
  (both the item's id) make a repeat replace the first, never add a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from redis.exceptions import RedisError

from ticker.client.push import plan
from ticker.config import Settings
from ticker.constants import Keys
from ticker.events import ZERO_ID, Event
from ticker.filters import Filter
from ticker.metrics import incr_stat
from ticker.retries import backoff, judge
from ticker.webhooks.netguard import AddressRefused, Target, resolve
from ticker.webpush.messages import Message, Subscription, VapidSigner, build_message, encrypt
from ticker.webpush.store import WebPushStore

__all__ = ["Sender", "start_webpush", "stop_webpush"]

log = logging.getLogger("ticker.webpush")

LEASE_MS = 15_000
RESOLVE_TTL = 60.0  # seconds a push service's checked address is reused
RETRY_MAX = 600.0
USER_AGENT = "ticker-webpush/1"
SENT = frozenset({200, 201, 202})
GONE = frozenset({404, 410})
_RELEASE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)
_RENEW = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
)


def http_client(settings: Settings) -> httpx.AsyncClient:
    """Pooled HTTP/2 connections to the push services (HTTP/1.1 where one has no h2)."""
    verify: ssl.SSLContext | bool = True
    if settings.webpush_ca_file:
        verify = ssl.create_default_context(cafile=settings.webpush_ca_file)
    limits = httpx.Limits(
        max_connections=max(10, settings.webpush_concurrency // 50),
        max_keepalive_connections=max(10, settings.webpush_concurrency // 50),
    )
    return httpx.AsyncClient(
        http2=True, verify=verify, limits=limits, follow_redirects=False, trust_env=False
    )


class Sender:
    """Sends Web Push for the stream's events (see the module doc)."""

    def __init__(self, redis: Any, keys: Keys, settings: Settings, http: httpx.AsyncClient):
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.http = http
        self.store = WebPushStore(redis, keys)
        self.signer: VapidSigner | None = None
        self._version = -1
        self.groups: dict[Filter, list[Subscription]] = {}
        self._targets: dict[tuple[str, int], tuple[float, Target]] = {}
        self._delay = 0.1

    async def run(self) -> None:
        while True:
            try:
                await self._session()
            except (RedisError, OSError) as exc:
                log.warning("web push sender lost Redis (%s); retrying", exc)
                await asyncio.sleep(self._delay * (0.5 + random.random()))
                self._delay = min(self._delay * 2, 5.0)

    async def _session(self) -> None:
        token = uuid.uuid4().hex
        while not await self.redis.set(self.keys.webpush_lease, token, nx=True, px=LEASE_MS):  # noqa: ASYNC110
            await asyncio.sleep(LEASE_MS / 3000)  # another process sends; wait to take over
        renewer = asyncio.create_task(self._renew(token), name="webpush-lease")
        try:
            self.signer = VapidSigner(
                await self.store.vapid(self.settings), self.settings.webpush_subject
            )
            # First run ever: start at the stream's end (no history is pushed to anyone).
            newest = await self.redis.xrevrange(self.keys.events, count=1)
            last = newest[0][0].decode() if newest else ZERO_ID
            await self.redis.set(self.keys.webpush_cursor, last, nx=True)
            cursor = (await self.redis.get(self.keys.webpush_cursor)).decode()
            self._delay = 0.1
            while not renewer.done():
                wait_ms = await self._retry_due()
                got = await self.redis.xread(
                    {self.keys.events: cursor}, count=20, block=max(1, wait_ms)
                )
                unsaved = False  # the cursor moved past events that sent nothing
                if got:
                    await self._subscriptions()  # once a batch, as it was read
                for raw_id, fields in got[0][1] if got else ():
                    event = Event.from_entry(raw_id.decode(), fields)
                    cursor = event.id
                    if await self.send_event(event, refresh=False):
                        await self.redis.set(self.keys.webpush_cursor, cursor)
                        unsaved = False
                    else:
                        unsaved = True
                if unsaved:
                    # An event that sent nothing has nothing to repeat: its cursor is
                    # saved once a batch, not once an event.
                    await self.redis.set(self.keys.webpush_cursor, cursor)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await renewer
            # Let another process take over at once rather than when the lease lapses.
            with contextlib.suppress(RedisError, OSError):
                await self.redis.eval(_RELEASE, 1, self.keys.webpush_lease, token)

    async def _renew(self, token: str) -> None:
        """Keep the lease while working; return (ending the session) once it is lost."""
        while True:
            await asyncio.sleep(LEASE_MS / 3000)
            if not await self.redis.eval(_RENEW, 1, self.keys.webpush_lease, token, LEASE_MS):
                log.warning("web push lease lost; another worker sends now")
                return

    async def _subscriptions(self) -> None:
        version = await self.store.version()
        if version == self._version:
            return
        groups: dict[Filter, list[Subscription]] = {}
        for sub in (await self.store.all()).values():
            groups.setdefault(sub.filter, []).append(sub)
        self.groups, self._version = groups, version

    async def send_event(self, event: Event, refresh: bool = True) -> Counter[str]:
        """Send one stream event to every subscription it concerns (``refresh=False``: the
        caller has just read the subscriptions, for a batch of events)."""
        if event.type not in ("item.published", "item.updated", "item.retracted"):
            return Counter()
        if refresh:
            await self._subscriptions()
        now = datetime.now(UTC)
        work: list[tuple[Subscription, Message]] = []
        expired = 0
        for f, subs in self.groups.items():
            if not event.matches(f):
                continue
            for push in plan(event.type, event.id, event.data, f):
                message = build_message(push, now)
                if message is None:
                    expired += len(subs)
                    continue
                work.extend((sub, message) for sub in subs)
        outcomes = await self._send_all(work, event.id, attempt=1)
        if expired:
            outcomes["expired"] += expired
        await self._count(outcomes)
        return outcomes

    async def _send_all(
        self, work: list[tuple[Subscription, Message]], event_id: str, attempt: int
    ) -> Counter[str]:
        outcomes: Counter[str] = Counter()
        todo = iter(work)

        async def sender() -> None:
            for sub, message in todo:  # one shared iterator: each item is taken once
                outcomes[await self._send_one(sub, message, event_id, attempt)] += 1

        # No more senders than messages: an event no subscription wants (most of them,
        # on a ticker without Web Push) starts no task at all.
        senders = min(self.settings.webpush_concurrency, len(work))
        if senders:
            await asyncio.gather(*(sender() for _ in range(senders)))
        return outcomes

    async def _target(self, endpoint: str) -> Target:
        """The endpoint checked by the SSRF guard; a host's answer is reused for a minute."""
        url = httpx.URL(endpoint)
        key = (url.host, url.port or 443)
        cached = self._targets.get(key)
        now = time.monotonic()
        if cached is None or cached[0] < now:
            target = await resolve(endpoint, allow_private=self.settings.webpush_allow_private)
            self._targets[key] = cached = (now + RESOLVE_TTL, target)
        base = cached[1]
        return Target(
            url=url.copy_with(host=base.url.host) if base.host_header else url,
            host_header=base.host_header,
            sni_hostname=base.sni_hostname,
        )

    async def _send_one(
        self, sub: Subscription, message: Message, event_id: str, attempt: int
    ) -> str:
        assert self.signer is not None
        try:
            target = await self._target(sub.endpoint)
        except AddressRefused as exc:
            if exc.final:
                log.warning("web push endpoint refused, subscription dropped: %s", exc)
                await self.store.delete(sub.id)
                return "refused"
            return await self._retry(sub, message, event_id, attempt, None)  # DNS may recover
        headers = {
            "ttl": str(message.ttl),
            "urgency": message.urgency,
            "topic": message.topic,
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
            "authorization": self.signer.authorization(sub.endpoint),
            "user-agent": USER_AGENT,
        }
        if target.host_header:
            headers["host"] = target.host_header
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
        timeout = self.settings.webpush_timeout_seconds
        try:
            response = await self.http.post(
                target.url,
                content=encrypt(message.payload, sub),
                headers=headers,
                extensions=extensions,
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            log.info("web push to %s failed: %s", target.url.host, type(exc).__name__)
            return await self._retry(sub, message, event_id, attempt, None)
        status = response.status_code
        if status in SENT:
            return "sent"
        if status in GONE:
            await self.store.delete(sub.id)
            return "gone"
        verdict = judge(status, None, response.headers.get("retry-after"))
        if verdict.retry:
            return await self._retry(sub, message, event_id, attempt, verdict.delay)
        log.warning("web push to %s refused: HTTP %d", target.url.host, status)
        return "failed"

    async def _retry(
        self,
        sub: Subscription,
        message: Message,
        event_id: str,
        attempt: int,
        after: float | None,
    ) -> str:
        if attempt >= self.settings.webpush_max_attempts:
            return "failed"
        delay = backoff(attempt, self.settings.webpush_retry_base_seconds, RETRY_MAX)
        if after is not None:
            delay = max(delay, min(after, RETRY_MAX))
        entry = {"event": event_id, "sub": sub.id, "attempt": attempt + 1}
        await self.redis.zadd(self.keys.webpush_retries, {orjson.dumps(entry): time.time() + delay})
        return "retried"

    async def _retry_due(self) -> int:
        """Send the retries that are due; the milliseconds until the next one (at most 1 s)."""
        now = time.time()
        due = await self.redis.zrangebyscore(self.keys.webpush_retries, "-inf", now, 0, 500)
        for raw in due:
            if not await self.redis.zrem(self.keys.webpush_retries, raw):
                continue
            entry = orjson.loads(raw)
            outcome = await self._retry_one(entry["event"], entry["sub"], int(entry["attempt"]))
            await self._count(Counter({outcome: 1}))
        nxt = await self.redis.zrange(self.keys.webpush_retries, 0, 0, withscores=True)
        if due and len(due) == 500:
            return 1
        return int(min(1.0, max(0.0, nxt[0][1] - time.time())) * 1000) if nxt else 1000

    async def _retry_one(self, event_id: str, sub_id: str, attempt: int) -> str:
        entries = await self.redis.xrange(self.keys.events, event_id, event_id)
        sub = await self.store.get(sub_id)
        if not entries or sub is None:
            return "dropped"
        event = Event.from_entry(event_id, entries[0][1])
        if await self._stale(event):
            return "dropped"
        for push in plan(event.type, event.id, event.data, sub.filter):
            message = build_message(push, datetime.now(UTC))
            if message is None:
                return "expired"
            return await self._send_one(sub, message, event.id, attempt)
        return "dropped"

    async def _stale(self, event: Event) -> bool:
        """An alert whose item has changed, left or been retracted since is not sent."""
        if event.type == "item.retracted" or event.item_id is None:
            return False
        doc = await self.redis.hget(self.keys.item(event.item_id), "item")
        live = await self.redis.zscore(self.keys.live, event.item_id)
        if doc is None or live is None:
            return True
        return bool(orjson.loads(doc).get("version") != event.data["item"].get("version"))

    async def _count(self, outcomes: Counter[str]) -> None:
        for outcome, n in outcomes.items():
            if n:
                await incr_stat(self.redis, self.keys, "webpush", outcome, n)


async def start_webpush(ctx: dict[str, Any]) -> None:
    """Worker startup: this process's Web Push sender (it sends while it holds the lease)."""
    settings: Settings = ctx["settings"]
    ctx["webpush_http"] = http = http_client(settings)
    sender = Sender(ctx["redis"], ctx["keys"], settings, http)
    ctx["webpush_sender"] = asyncio.create_task(sender.run(), name="webpush-sender")


async def stop_webpush(ctx: dict[str, Any]) -> None:
    task: asyncio.Task[None] | None = ctx.pop("webpush_sender", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    http: httpx.AsyncClient | None = ctx.pop("webpush_http", None)
    if http is not None:
        await http.aclose()

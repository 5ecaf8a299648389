"""Web Push delivery: one sender per deployment, following the event stream in order.

Why this shape:

- The **sender** reads the event stream (the source of truth) from a cursor
  kept in Redis, like the webhook dispatcher, so a worker that was down resumes
  where the cursor stands. One worker process at a time sends (it holds a
  lease, renewed while it works; another process takes over if it dies), so a
  correction or a withdrawal never overtakes the alert it replaces.
- An event is sent to every subscription whose filter it matches, encrypted
  per subscription (RFC 8291 needs a fresh key each time; that key agreement
  is most of a send's CPU, so ``webpush_encrypt_processes`` processes do it
  in batches beside the sender), with
  ``webpush_concurrency`` sends in flight over pooled HTTP/2 connections
  (``workers.http2``: a lean client, since a flash is a hundred thousand tiny
  POSTs to a handful of origins; httpx over HTTP/1.1 for a service without h2).
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
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

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
from ticker.webpush.messages import (
    Message,
    Subscription,
    VapidSigner,
    build_message,
    encrypt,
)
from ticker.webpush.store import WebPushStore
from workers.http2 import H2Error, H2Pool, NoHTTP2, Origin
from workers.sealing import encryption_pool, seal_many

__all__ = ["Sender", "start_webpush", "stop_webpush"]

log = logging.getLogger("ticker.webpush")
_T = TypeVar("_T")

LEASE_MS = 15_000
RESOLVE_TTL = 60.0  # seconds a push service's checked address is reused
RETRY_MAX = 600.0
ENCRYPT_BATCH = 64  # messages encrypted per call to the pool
# Subscriptions from which encryption moves to the processes (below, a flash is over before
# they would have started; a deployment with few subscriptions never starts them).
POOL_FROM = 1000
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


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.webpush_ca_file or None)


def http_client(settings: Settings) -> httpx.AsyncClient:
    """Pooled HTTP/1.1 connections, for a push service that offers no h2."""
    limits = httpx.Limits(
        max_connections=max(10, settings.webpush_concurrency // 4),
        max_keepalive_connections=max(10, settings.webpush_concurrency // 4),
    )
    return httpx.AsyncClient(
        verify=_ssl_context(settings), limits=limits, follow_redirects=False, trust_env=False
    )


def h2_pool(settings: Settings) -> H2Pool:
    """Pooled HTTP/2 connections to the push services (a few per origin)."""
    return H2Pool(_ssl_context(settings), connections=4, user_agent=USER_AGENT)


@dataclass(frozen=True, slots=True)
class _Route:
    """A push service origin as the SSRF guard checked it."""

    expires: float
    target: Target
    origin: Origin


class Sender:
    """Sends Web Push for the stream's events (see the module doc)."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        settings: Settings,
        http: httpx.AsyncClient,
        h2: H2Pool | None = None,
    ):
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.http = http
        self.h2 = h2
        # Push services (by name: their addresses change) that offered no h2.
        self._http1: set[str] = set()
        self.pool: ProcessPoolExecutor | None = None
        self._pool_off = False
        self.store = WebPushStore(redis, keys)
        self.signer: VapidSigner | None = None
        self._version = -1
        self.groups: dict[Filter, list[Subscription]] = {}
        self._routes: dict[str, _Route] = {}
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
            await self._pool_if_needed()
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
                if not got:
                    await self._pool_if_needed()  # idle: ready before the next flash
                    self._tidy()
                unsaved = False  # the cursor moved past events that sent nothing
                for raw_id, fields in got[0][1] if got else ():
                    event = Event.from_entry(raw_id.decode(), fields)
                    cursor = event.id
                    if await self.send_event(event):
                        await self.redis.set(self.keys.webpush_cursor, cursor)
                        unsaved = False
                    else:
                        unsaved = True
                if unsaved:
                    # An event that sent nothing has nothing to repeat: its cursor is
                    # saved once a batch, not once an event.
                    await self.redis.set(self.keys.webpush_cursor, cursor)
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.pool = None
            self._pool_off = False
            renewer.cancel()
            # Waited for, not awaited under suppress(CancelledError): that also swallowed
            # a cancellation of this task landing here (stop_webpush, just after Redis
            # dropped), and the sender ran on, holding the worker's restart.
            await asyncio.wait([renewer])
            if not renewer.cancelled():
                renewer.exception()  # retrieved: its Redis error ended this session already
            # Let another process take over at once rather than when the lease lapses.
            with contextlib.suppress(RedisError, OSError):
                await self.redis.eval(_RELEASE, 1, self.keys.webpush_lease, token)

    async def _pool_if_needed(self) -> None:
        """The encryption processes, started by the process that sends once there are
        ``POOL_FROM`` subscriptions (checked when it takes the lease and while idle, so that
        a flash does not wait for them, and at each event)."""
        processes = self.settings.webpush_encrypt_processes
        if self.pool is not None or self._pool_off or processes <= 0:
            return
        if await self.redis.hlen(self.keys.webpush_subscriptions) < POOL_FROM:
            return
        pool = encryption_pool(processes)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.gather(
                *(loop.run_in_executor(pool, seal_many, []) for _ in range(processes))
            )
        except (OSError, BrokenProcessPool) as exc:
            log.warning("web push encryption processes did not start (%r); sender encrypts", exc)
            pool.shutdown(wait=False, cancel_futures=True)
            self._pool_off = True  # for this session: not a warning per event
            return
        self.pool = pool

    async def _renew(self, token: str) -> None:
        """Keep the lease while working; return (ending the session) once it is lost."""
        while True:
            await asyncio.sleep(LEASE_MS / 3000)
            if not await self.redis.eval(_RENEW, 1, self.keys.webpush_lease, token, LEASE_MS):
                log.warning("web push lease lost; another worker sends now")
                return

    async def _subscriptions(self) -> AsyncIterator[list[Subscription]]:
        """The subscriptions in slices: from memory when none changed since the last event,
        else from Redis as they are read (a flash to many need not wait for the last one),
        kept for the next event when none changed meanwhile."""
        version = await self.store.version()
        if version == self._version:
            for subs in self.groups.values():
                for start in range(0, len(subs), ENCRYPT_BATCH):
                    yield subs[start : start + ENCRYPT_BATCH]
            return
        groups: dict[Filter, list[Subscription]] = {}
        async for page in self.store.pages():
            for sub in page:
                groups.setdefault(sub.filter, []).append(sub)
            for start in range(0, len(page), ENCRYPT_BATCH):
                yield page[start : start + ENCRYPT_BATCH]
        self.groups, self._version = groups, version

    async def send_event(self, event: Event) -> Counter[str]:
        """Send one stream event to every subscription it concerns."""
        if event.type not in ("item.published", "item.updated", "item.retracted"):
            return Counter()
        await self._pool_if_needed()
        now = datetime.now(UTC)
        outcomes: Counter[str] = Counter()
        wanted: dict[Filter, tuple[list[Message], int]] = {}  # per filter: messages, expired

        def messages_for(f: Filter) -> list[Message]:
            if f not in wanted:
                pushes = plan(event.type, event.id, event.data, f) if event.matches(f) else []
                built = [build_message(push, now) for push in pushes]
                messages = [m for m in built if m is not None]
                wanted[f] = (messages, len(built) - len(messages))
            messages, expired = wanted[f]
            if expired:
                outcomes["expired"] += expired
            return messages

        async def work() -> AsyncGenerator[list[tuple[Subscription, Message]], None]:
            async for subs in self._subscriptions():
                batch = [(sub, m) for sub in subs for m in messages_for(sub.filter)]
                if batch:
                    yield batch

        outcomes.update(await self._send_all(work(), event.id, attempt=1))
        await self._count(outcomes)
        return outcomes

    async def _send_all(
        self,
        work: AsyncGenerator[list[tuple[Subscription, Message]], None],
        event_id: str,
        attempt: int,
    ) -> Counter[str]:
        """Encrypt in batches (in the pool when there is one) while ``webpush_concurrency``
        sends take what is encrypted: the key agreement and the HTTP/2 traffic overlap."""
        outcomes: Counter[str] = Counter()
        first = await anext(work, None)
        if first is None:  # no subscription wants it: no tasks to start
            await work.aclose()
            return outcomes
        work = _starting_with(first, work)
        concurrency = max(1, self.settings.webpush_concurrency)
        sealed: asyncio.Queue[tuple[Subscription, Message, bytes] | None] = asyncio.Queue(
            concurrency
        )
        taking = asyncio.Lock()  # one encrypter at a time takes the next batch

        async def encrypter() -> None:
            while True:
                async with taking:
                    chunk = await anext(work, None)
                if chunk is None:
                    return
                for (sub, message), body in zip(chunk, await self._seal(chunk), strict=True):
                    await sealed.put((sub, message, body))

        async def sender() -> None:
            while (job := await sealed.get()) is not None:
                sub, message, body = job
                outcomes[await self._send_one(sub, message, event_id, attempt, body)] += 1

        async with contextlib.aclosing(work), asyncio.TaskGroup() as senders:
            for _ in range(concurrency):
                senders.create_task(sender())
            async with asyncio.TaskGroup() as encrypters:
                for _ in range(2 * self.settings.webpush_encrypt_processes or 1):
                    encrypters.create_task(encrypter())
            for _ in range(concurrency):
                await sealed.put(None)
        return outcomes

    async def _seal(self, chunk: list[tuple[Subscription, Message]]) -> list[bytes]:
        jobs = [(message.payload, sub.p256dh, sub.auth) for sub, message in chunk]
        pool = self.pool
        if pool is not None:
            try:
                return await asyncio.get_running_loop().run_in_executor(pool, seal_many, jobs)
            except BrokenProcessPool:
                if self.pool is pool:
                    log.warning("web push encryption processes died; the sender encrypts")
                    pool.shutdown(wait=False, cancel_futures=True)
                    self.pool = None
        return seal_many(jobs)

    def _tidy(self) -> None:
        """While idle: let go of idle push connections and of checked routes that expired
        (a subscription's push service may not be met again)."""
        if self.h2 is not None:
            self.h2.prune()
        now = time.monotonic()
        self._routes = {o: r for o, r in self._routes.items() if r.expires >= now}

    async def _route(self, origin: str) -> _Route:
        """The origin checked by the SSRF guard; its answer is reused for a minute."""
        route = self._routes.get(origin)
        now = time.monotonic()
        if route is None or route.expires < now:
            target = await resolve(origin, allow_private=self.settings.webpush_allow_private)
            url = target.url
            host = url.host
            authority = target.host_header or url.netloc.decode("ascii")
            connect = Origin(host, url.port or 443, authority, target.sni_hostname or host)
            self._routes[origin] = route = _Route(now + RESOLVE_TTL, target, connect)
        return route

    async def _send_one(
        self,
        sub: Subscription,
        message: Message,
        event_id: str,
        attempt: int,
        body: bytes | None = None,
    ) -> str:
        assert self.signer is not None
        origin, path = _split(sub.endpoint)
        try:
            route = await self._route(origin)
        except AddressRefused as exc:
            if exc.final:
                log.warning("web push endpoint refused, subscription dropped: %s", exc)
                await self.store.delete(sub.id)
                return "refused"
            return await self._retry(sub, message, event_id, attempt, None)  # DNS may recover
        if body is None:
            body = encrypt(message.payload, sub)
        authorization = self.signer.authorization(origin)
        timeout = self.settings.webpush_timeout_seconds
        retry_after: str | None
        try:
            if self.h2 is not None and route.origin.authority not in self._http1:
                try:
                    headers = [*message.headers, (b"authorization", authorization.encode())]
                    status, extra = await self.h2.post(route.origin, path, headers, body, timeout)
                    raw = extra.get(b"retry-after")
                    retry_after = raw.decode("latin-1") if raw is not None else None
                except NoHTTP2:
                    log.info("%s offers no HTTP/2; sending over HTTP/1.1", route.origin.authority)
                    self._http1.add(route.origin.authority)
                    status, retry_after = await self._post_http1(
                        route.target, path, message, body, authorization, timeout
                    )
            else:
                status, retry_after = await self._post_http1(
                    route.target, path, message, body, authorization, timeout
                )
        except (H2Error, httpx.HTTPError) as exc:
            log.info("web push to %s failed: %s", route.origin.authority, exc)
            return await self._retry(sub, message, event_id, attempt, None)
        if status in SENT:
            return "sent"
        if status in GONE:
            await self.store.delete(sub.id)
            return "gone"
        verdict = judge(status, None, retry_after)
        if verdict.retry:
            return await self._retry(sub, message, event_id, attempt, verdict.delay)
        log.warning("web push to %s refused: HTTP %d", route.origin.authority, status)
        return "failed"

    async def _post_http1(
        self,
        target: Target,
        path: str,
        message: Message,
        body: bytes,
        authorization: str,
        timeout: float,
    ) -> tuple[int, str | None]:
        headers = {k.decode(): v.decode() for k, v in message.headers}
        headers["authorization"] = authorization
        headers["user-agent"] = USER_AGENT
        if target.host_header:
            headers["host"] = target.host_header
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
        response = await self.http.post(
            target.url.copy_with(raw_path=path.encode()),
            content=body,
            headers=headers,
            extensions=extensions,
            timeout=timeout,
        )
        return response.status_code, response.headers.get("retry-after")

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


def _split(endpoint: str) -> tuple[str, str]:
    """An https endpoint's origin and its path with the query (cheaper than a URL parse)."""
    cuts = [i for i in (endpoint.find("/", 8), endpoint.find("?", 8)) if i > 0]
    if not cuts:
        return endpoint, "/"
    cut = min(cuts)
    path = endpoint[cut:]
    return endpoint[:cut], path if path.startswith("/") else "/" + path


async def start_webpush(ctx: dict[str, Any]) -> None:
    """Worker startup: this process's Web Push sender (it sends while it holds the lease)."""
    settings: Settings = ctx["settings"]
    ctx["webpush_http"] = http = http_client(settings)
    ctx["webpush_h2"] = h2 = h2_pool(settings)
    sender = Sender(ctx["redis"], ctx["keys"], settings, http, h2)
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
    h2: H2Pool | None = ctx.pop("webpush_h2", None)
    if h2 is not None:
        await h2.aclose()


async def _starting_with(first: _T, rest: AsyncGenerator[_T, None]) -> AsyncGenerator[_T, None]:
    """``first`` (already taken from ``rest``), then the rest."""
    try:
        yield first
        async for item in rest:
            yield item
    finally:
        await rest.aclose()

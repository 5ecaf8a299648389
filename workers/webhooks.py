"""Webhook delivery: the per-endpoint delivery job and the sweeper (and why).

Why this shape:

- The **dispatcher** (``workers/webhook_dispatch.py``, one task per worker
  process) reads the event stream, the source of truth, with XREAD from its
  own cursor kept in Redis, not from pub/sub: a worker that was down picks up
  where the cursor stands and misses nothing. For each event it appends the
  envelope to the queue of every enabled endpoint whose filter matches, and
  moves the cursor, in one Lua step that does nothing if the cursor is already
  there (several worker processes may run dispatchers; each event is queued
  once per endpoint).
- Each append becomes an arq **delivery job** for that endpoint. Jobs take the
  endpoint's lease (SET NX) and deliver the queue's head until it is empty;
  a job that finds the lease taken leaves (the holder re-checks the queue after
  releasing it). One deliverer per endpoint, head first: per-endpoint order.
- A failed attempt that may succeed later (timeout, connection error, 5xx,
  429) stores the head's attempt count and the time of the next attempt, and
  enqueues a deferred job; nothing behind the head is sent before it. After
  ``webhook_max_attempts`` (or at once for other 4xx and refused addresses)
  the head moves to the dead-letter list; after ``webhook_disable_after``
  consecutive dead letters the endpoint is disabled.
- The **sweeper** (cron) nudges any endpoint with a backlog and no lease, so a
  job lost in a crash only delays a delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

import httpx
import orjson
from arq import Retry
from redis.exceptions import RedisError

from ticker.config import Settings
from ticker.constants import Keys
from ticker.jobs import enqueue_delivery
from ticker.metrics import incr_stat
from ticker.retries import Verdict, backoff, judge
from ticker.webhooks.killed import killed_items
from ticker.webhooks.netguard import AddressRefused, resolve
from ticker.webhooks.signing import signed_headers
from ticker.webhooks.store import Endpoint, WebhookStore
from workers.webhook_dispatch import Dispatcher, sweep

__all__ = [
    "deliver_webhooks",
    "start_webhooks",
    "stop_webhooks",
    "sweep_webhooks",
]

log = logging.getLogger("ticker.webhooks")

JOB_BUDGET_SECONDS = 60.0  # a job hands over to a fresh one after this much work
USER_AGENT = "ticker-webhooks/1"
_RELEASE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)


async def sweep_webhooks(ctx: dict[str, Any]) -> int:
    """Cron safety net: a delivery job lost in a crash only delays the delivery."""
    return await sweep(ctx["redis"], ctx["keys"], ctx["queue"])


async def deliver_webhooks(ctx: dict[str, Any], endpoint_id: str) -> str:
    """Deliver an endpoint's queue, head first, while this job holds its lease."""
    try:
        return await _Deliverer(ctx, endpoint_id).run()
    except (RedisError, OSError) as exc:
        raise Retry(defer=1) from exc


class _Deliverer:
    def __init__(self, ctx: dict[str, Any], endpoint_id: str) -> None:
        self.redis: Any = ctx["redis"]
        self.jobs: Any = ctx["queue"]  # the arq pool (its own Redis under Cluster)
        self.keys: Keys = ctx["keys"]
        self.settings: Settings = ctx["settings"]
        self.http: httpx.AsyncClient = ctx["webhook_http"]
        self.store = WebhookStore(self.redis, self.keys)
        self.id = endpoint_id
        self.queue = self.keys.webhook_queue(endpoint_id)
        self.state = self.keys.webhook_state(endpoint_id)
        self.lease = self.keys.webhook_lease(endpoint_id)
        # Outlives one attempt (renewed before each); a crashed holder blocks no longer.
        self.lease_ms = int((self.settings.webhook_timeout_seconds + 30) * 1000)

    async def run(self) -> str:
        token = uuid.uuid4().hex
        if not await self.redis.set(self.lease, token, nx=True, px=self.lease_ms):
            return "busy"  # the holder re-checks the queue when it lets go
        outcome = "drained"
        try:
            outcome = await self._drain()
            return outcome
        finally:
            await self.redis.eval(_RELEASE, 1, self.lease, token)
            if outcome in ("drained", "handover") and await self.redis.llen(self.queue):
                # Something arrived while we held the lease (its own job left): go on.
                await enqueue_delivery(self.jobs, self.keys, self.id, f"kick:{token}")

    async def _drain(self) -> str:
        start = time.monotonic()
        # Hand over after the budget, or before an attempt could outlast the job's limit
        # (the worker's job timeout: a longer one would also delay every job a crashed
        # worker held, since arq sizes its in-progress mark by the longest timeout).
        deadline = min(
            start + JOB_BUDGET_SECONDS,
            start + self.settings.worker_job_timeout - 2 - self.settings.webhook_timeout_seconds,
        )
        attempted = False
        while True:
            endpoint = await self.store.get(self.id)
            if endpoint is None:
                return "gone"
            if not endpoint.enabled:
                return "disabled"
            state = await self.redis.hgetall(self.state)
            if float(state.get(b"not_before") or 0) > time.time():
                return "waiting"  # a deferred job makes the next attempt
            head: bytes | None = await self.redis.lindex(self.queue, 0)
            if head is None:
                return "drained"
            if attempted and time.monotonic() > deadline:
                return "handover"  # at least one attempt per job, whatever the timeouts
            await self.redis.pexpire(self.lease, self.lease_ms)
            await self._attempt(endpoint, head, state)
            attempted = True

    async def _attempt(self, endpoint: Endpoint, head: bytes, state: dict[bytes, bytes]) -> None:
        event_id = str(orjson.loads(head)["id"])
        if await killed_items(self.redis, self.keys, [head]):
            # The item was killed while this waited: its text is not sent (ticker.webhooks.killed).
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.lpop(self.queue)
                pipe.hdel(self.state, "head", "attempts", "not_before")
                await pipe.execute()
            return
        same_head = state.get(b"head", b"").decode() == event_id
        attempt = (int(state.get(b"attempts") or 0) if same_head else 0) + 1
        verdict, detail = await self._send(endpoint, head, event_id)
        now = time.time()
        s = self.settings
        if verdict.ok:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.lpop(self.queue)
                pipe.hdel(
                    self.state,
                    "head", "attempts", "not_before", "failing_since", "consecutive_dead",
                    "last_error",
                )  # fmt: skip
                pipe.hset(self.state, "last_success_at", now)
                await pipe.execute()
            await incr_stat(self.redis, self.keys, "webhook_deliveries", "delivered")
            return
        await incr_stat(self.redis, self.keys, "webhook_failures", verdict.reason)
        log.info("webhook %s event %s attempt %d failed: %s", self.id, event_id, attempt, detail)
        if verdict.retry and attempt < s.webhook_max_attempts:
            delay = (
                min(verdict.delay, s.webhook_retry_max_seconds)
                if verdict.delay is not None
                else backoff(attempt, s.webhook_retry_base_seconds, s.webhook_retry_max_seconds)
            )
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(
                    self.state,
                    mapping={
                        "head": event_id,
                        "attempts": attempt,
                        "not_before": now + delay,
                        "last_error": detail,
                    },
                )
                pipe.hsetnx(self.state, "failing_since", now)
                await pipe.execute()
            await enqueue_delivery(
                self.jobs,
                self.keys,
                self.id,
                f"retry:{event_id}:{attempt}",
                defer_by=delay,
            )
            await incr_stat(self.redis, self.keys, "webhook_deliveries", "retry")
            return
        await self._dead_letter(head, event_id, attempt, detail, now)

    async def _dead_letter(
        self, head: bytes, event_id: str, attempts: int, detail: str, now: float
    ) -> None:
        record = {"attempts": attempts, "error": detail, "dead_at": now}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpop(self.queue)
            await self.store.add_dead_letter(pipe, self.id, head, event_id, record)
            pipe.hdel(self.state, "head", "attempts", "not_before")
            pipe.hset(self.state, "last_error", detail)
            pipe.hsetnx(self.state, "failing_since", now)
            pipe.hincrby(self.state, "consecutive_dead", 1)
            results = await pipe.execute()
        await incr_stat(self.redis, self.keys, "webhook_deliveries", "dead_letter")
        consecutive = int(results[-1])
        limit = self.settings.webhook_disable_after
        if limit and consecutive >= limit:
            reason = f"disabled after {consecutive} consecutive dead letters (last: {detail})"
            await self.redis.hset(
                self.keys.webhook(self.id), mapping={"enabled": "0", "disabled_reason": reason}
            )
            log.warning("webhook %s %s", self.id, reason)

    async def _send(self, endpoint: Endpoint, body: bytes, event_id: str) -> tuple[Verdict, str]:
        try:
            target = await resolve(endpoint.url, allow_private=self.settings.webhook_allow_private)
        except AddressRefused as exc:
            if not exc.final:  # a DNS failure may pass: retry like a connection error
                return judge(None, "dns"), f"dns: {exc}"
            return judge(None, "refused"), f"refused: {exc}"
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signed_headers(endpoint.signing_secrets(time.time()), event_id, body),
        }
        if target.host_header:
            headers["host"] = target.host_header
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
        timeout = self.settings.webhook_timeout_seconds
        try:
            async with (
                asyncio.timeout(timeout),
                self.http.stream(
                    "POST",
                    target.url,
                    content=body,
                    headers=headers,
                    extensions=extensions,
                    timeout=timeout,
                ) as response,
            ):
                # The answer's body is not read: only its status matters.
                status, after = response.status_code, response.headers.get("retry-after")
        except (TimeoutError, httpx.TimeoutException):
            return judge(None, "timeout"), f"timeout after {timeout}s"
        except httpx.HTTPError as exc:
            return judge(None, "connection"), f"connection: {type(exc).__name__}: {exc}"[:300]
        return judge(status, None, after), f"HTTP {status}"


async def start_webhooks(ctx: dict[str, Any]) -> None:
    """Worker startup: the HTTP client for deliveries and this process's dispatcher."""
    ctx["webhook_http"] = httpx.AsyncClient(follow_redirects=False, trust_env=False)
    dispatcher = Dispatcher(ctx["redis"], ctx["keys"], ctx["queue"])
    ctx["webhook_dispatcher"] = asyncio.create_task(dispatcher.run(), name="webhook-dispatcher")


async def stop_webhooks(ctx: dict[str, Any]) -> None:
    task: asyncio.Task[None] | None = ctx.pop("webhook_dispatcher", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    http: httpx.AsyncClient | None = ctx.pop("webhook_http", None)
    if http is not None:
        await http.aclose()

"""Rate limits on intake writes, per client address and per API key, kept in Redis.

The `limits` library's moving window runs as a Lua script on the service's own Redis (the
same connection pool, keys under the deployment's hash tag), so every API process shares
one count. Writes (POST, PATCH, DELETE on /v1/items, and Web Push subscriptions) are
counted against the caller's address first, so even unauthenticated floods are capped, then
against the API key's name.
Answers carry ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``; a
refusal is a 429 JSON error with ``Retry-After``. If Redis cannot be reached the intake
answers 503, as it would a moment later anyway.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import orjson
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticker.constants import Keys
from ticker.exceptions import ClientError, ConfigError
from ticker.middleware.conncap import client_ip
from ticker.middleware.errors import error_body

__all__ = ["RateLimits", "Verdict", "parse_limits", "rate_limit_middleware", "send_json"]

log = logging.getLogger("ticker.middleware.ratelimit")

WRITE_METHODS = frozenset({"POST", "PATCH", "DELETE"})
INTAKE_PATH = "/v1/items"
# Public writes limited per address too (a reader's browser subscribing to Web Push).
LIMITED_PATHS = (INTAKE_PATH, "/v1/push/subscriptions")


def parse_limits(value: str, name: str) -> list[RateLimitItem]:
    """``"10/second;120/minute"`` into limit items; empty or ``0`` turns the limit off."""
    if value.strip() in ("", "0"):
        return []
    try:
        return list(parse_many(value))
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a rate limit like '120/minute'") from None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The tightest of a caller's limits after one hit."""

    allowed: bool
    limit: int
    remaining: int
    reset: float  # seconds until a slot frees up
    scope: str = "ip"  # which limit: "ip" or "key"

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(max(0, self.remaining)).encode()),
            (b"ratelimit-reset", str(math.ceil(self.reset)).encode()),
        ]
        if not self.allowed:
            out.append((b"retry-after", str(max(1, math.ceil(self.reset))).encode()))
        return out


class RateLimits:
    """The intake's limits, on the app's Redis connection pool."""

    def __init__(self, redis: Any, keys: Keys, per_key: str, per_ip: str) -> None:
        self.per_key = parse_limits(per_key, "TICKER_RATE_LIMIT_PER_KEY")
        self.per_ip = parse_limits(per_ip, "TICKER_RATE_LIMIT_PER_IP")
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=f"{keys.tag}:ratelimit",
            connection_pool=redis.connection_pool,
        )
        self.limiter = MovingWindowRateLimiter(storage)

    @property
    def enabled(self) -> bool:
        return bool(self.per_key or self.per_ip)

    async def hit(self, kind: str, who: str) -> Verdict | None:
        """Count one write by ``who`` (an address or a key name); None if unlimited."""
        items = self.per_ip if kind == "ip" else self.per_key
        tightest: Verdict | None = None
        now = time.time()
        for item in items:
            allowed = await self.limiter.hit(item, kind, who)
            stats = await self.limiter.get_window_stats(item, kind, who)
            reset = max(0.0, stats.reset_time - now)
            verdict = Verdict(allowed, item.amount, stats.remaining, reset, kind)
            if tightest is None or _tighter(verdict, tightest):
                tightest = verdict
        return tightest


def _tighter(a: Verdict, b: Verdict) -> bool:
    if a.allowed != b.allowed:
        return not a.allowed
    return (a.remaining, -a.reset) < (b.remaining, -b.reset)


async def send_json(send: Send, status: int, body: dict[str, Any], headers: list[Any]) -> None:
    raw = orjson.dumps(body)
    start_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": raw})


class IntakeRateLimit:
    """ASGI middleware applying :class:`RateLimits` (from the lifespan state) to writes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state") or {}
        limits: RateLimits | None = state.get("ratelimits")
        if (
            limits is None
            or not limits.enabled
            or scope["type"] != "http"
            or scope["method"] not in WRITE_METHODS
            or not any(
                scope["path"] == p or scope["path"].startswith(p + "/") for p in LIMITED_PATHS
            )
        ):
            await self.app(scope, receive, send)
            return
        try:
            verdict = await limits.hit("ip", client_ip(scope))
            if verdict is None or verdict.allowed:
                name = _key_name(scope, state)
                by_key = await limits.hit("key", name) if name else None
                if by_key is not None and (verdict is None or _tighter(by_key, verdict)):
                    verdict = by_key
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("rate limit store unavailable: %r", exc)
            body = error_body("unavailable", "the service is briefly unavailable; retry")
            await send_json(send, 503, body, [(b"retry-after", b"2")])
            return
        if verdict is None:
            await self.app(scope, receive, send)
            return
        if not verdict.allowed:
            if (metrics := state.get("metrics")) is not None:
                metrics.rate_limited.labels(verdict.scope).inc()
            message = f"rate limit of {verdict.limit} writes exceeded; retry later"
            body = error_body("rate_limited", message)
            await send_json(send, 429, body, verdict.headers())
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in verdict.headers():
                    headers.append(k.decode(), v.decode())
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _key_name(scope: Scope, state: dict[str, Any]) -> str | None:
    """The presented API key's name, or None (the endpoint answers 401 itself)."""
    keyring = state.get("keyring")
    authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    if keyring is None or authorization is None:
        return None
    try:
        name = str(keyring.authenticate(authorization.decode("latin-1")).name)
    except ClientError:
        return None
    scope.setdefault("ticker.principal", name)  # the access log names who was refused
    return name


def rate_limit_middleware() -> Middleware:
    """Starlette ``Middleware`` entry for ``Starlette(middleware=[...])``."""
    return Middleware(IntakeRateLimit)

"""A budget for failed authentication on every route, per client address and per key name.

Each answer of 401 (no key, unknown key) counts against the caller's address; each
403 (a known key used outside its scopes or editions) against the address and the
key's name. A caller over budget gets 429 with ``Retry-After`` before its key is even
looked at, on every authenticated route (reads included), so keys cannot be guessed
at the speed of the network. Requests without an ``Authorization`` header skip the
check (they cannot guess a key); streams never pass here (ticker.stream.gate). The
counts use the write limits' store (ticker.middleware.ratelimit): one moving window per caller,
shared by every API process.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from limits import RateLimitItem
from limits.aio.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticker.exceptions import ClientError
from ticker.middleware.conncap import client_ip
from ticker.middleware.errors import error_body
from ticker.middleware.ratelimit import parse_limits, send_json

__all__ = ["AuthFailureLimit", "AuthFailures", "auth_failure_middleware"]

log = logging.getLogger("ticker.middleware.authlimit")

FAILED = frozenset({401, 403})


class AuthFailures:
    """The failure budget (``TICKER_RATE_LIMIT_AUTH_FAILURES``) on a shared limiter."""

    def __init__(self, limiter: MovingWindowRateLimiter, value: str) -> None:
        self.limiter = limiter
        self.items: list[RateLimitItem] = parse_limits(value, "TICKER_RATE_LIMIT_AUTH_FAILURES")

    async def over(self, ip: str, name: str | None) -> float | None:
        """Seconds until ``ip`` (or the key ``name``) may fail again, or None if within budget."""
        wait: float | None = None
        now = time.time()
        for kind, who in (("authfail-ip", ip), ("authfail-key", name)):
            if who is None:
                continue
            for item in self.items:
                if not await self.limiter.test(item, kind, who):
                    stats = await self.limiter.get_window_stats(item, kind, who)
                    wait = max(wait or 0.0, stats.reset_time - now)
        return wait

    async def failed(self, ip: str, name: str | None) -> None:
        """Count one failure against the address (and the key's name, for a 403)."""
        for item in self.items:
            await self.limiter.hit(item, "authfail-ip", ip)
            if name is not None:
                await self.limiter.hit(item, "authfail-key", name)


class AuthFailureLimit:
    """ASGI middleware applying :class:`AuthFailures` (from the lifespan state)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state") or {}
        budget: AuthFailures | None = state.get("authfailures")
        authorization = None
        if scope["type"] == "http":
            authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if budget is None or not budget.items or authorization is None:
            await self.app(scope, receive, send)
            return
        ip = client_ip(scope)
        try:
            wait = await budget.over(ip, _name(state, authorization))
        except (RedisError, OSError, TimeoutError) as exc:
            # Every authenticated route needs Redis anyway: answer now, not after a
            # second timeout in the endpoint.
            log.warning("rate limit store unavailable: %r", exc)
            body = error_body("unavailable", "the service is briefly unavailable; retry")
            await send_json(send, 503, body, [(b"retry-after", b"2")])
            return
        if wait is not None:
            if (metrics := state.get("metrics")) is not None:
                metrics.rate_limited.labels("auth").inc()
            retry = str(max(1, math.ceil(wait))).encode()
            body = error_body("rate_limited", "too many failed authentications; retry later")
            await send_json(send, 429, body, [(b"retry-after", retry)])
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in FAILED:
                name = scope.get("ticker.principal") if message["status"] == 403 else None
                try:
                    await budget.failed(ip, name)
                except (RedisError, OSError, TimeoutError) as exc:
                    log.warning("rate limit store unavailable: %r", exc)
            await send(message)

        await self.app(scope, receive, counting_send)


def _name(state: dict[str, Any], authorization: bytes) -> str | None:
    """The presented key's name if it is a known key (its 403s are counted by name)."""
    keyring = state.get("keyring")
    if keyring is None:
        return None
    try:
        return str(keyring.authenticate(authorization.decode("latin-1")).name)
    except ClientError:
        return None


def auth_failure_middleware() -> Middleware:
    """Starlette ``Middleware`` entry for ``Starlette(middleware=[...])``."""
    return Middleware(AuthFailureLimit)

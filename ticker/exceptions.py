"""Exceptions raised by Ticker.

TickerError
├── ConfigError            bad configuration at startup
├── CrashLoop              API processes keep dying: the supervisor gives up
├── ClientError            the caller's fault; becomes a 4xx JSON body
│   ├── AuthError          401: missing or unknown API key
│   ├── ForbiddenError     403: key lacks the scope or edition
│   ├── ValidationError    422 (or 400/413/415): names the offending field
│   ├── NotFoundError      404
│   └── ConflictError      409/422: idempotency key reused with another body
└── UnavailableError       503: Redis unreachable; retry after a while
    └── NotReplicatedError also a RedisError: replicas did not confirm a write in time
"""

from __future__ import annotations

from redis.exceptions import RedisError

__all__ = [
    "AuthError",
    "ClientError",
    "ConfigError",
    "ConflictError",
    "CrashLoop",
    "ForbiddenError",
    "NotFoundError",
    "NotReplicatedError",
    "TickerError",
    "UnavailableError",
    "ValidationError",
]


class TickerError(Exception):
    """Base of every Ticker exception."""


class ConfigError(TickerError):
    """The configuration cannot be used."""


class CrashLoop(TickerError):
    """Too many deaths too close together: give up and let the orchestrator act."""


class ClientError(TickerError):
    """A request the client must fix; rendered as a JSON error body."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        field: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class AuthError(ClientError):
    status = 401
    code = "unauthorized"


class ForbiddenError(ClientError):
    status = 403
    code = "forbidden"


class ValidationError(ClientError):
    status = 422
    code = "invalid"


class NotFoundError(ClientError):
    status = 404
    code = "not_found"


class ConflictError(ClientError):
    status = 422
    code = "idempotency_conflict"


class UnavailableError(TickerError):
    """A dependency (Redis) is down; the client should retry later."""

    retry_after = 2


class NotReplicatedError(UnavailableError, RedisError):
    """Fewer replicas than TICKER_REDIS_WAIT_REPLICAS confirmed a write in time.

    A RedisError too, so whatever handles Redis failures handles it; the write
    may still survive, and a retry (same Idempotency-Key) is safe.
    """

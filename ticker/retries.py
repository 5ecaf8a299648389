"""Retry policy (pure): the one backoff every retry loop uses (webhook deliveries,
the push bridge, the client, reconnecting to Redis, restarting a process), and what a
webhook attempt's result means."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["Verdict", "backoff", "backoff_step", "judge", "retry_after"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """``ok``: delivered; ``retry``: try again (after ``delay`` if set); else final.

    ``reason`` names the failure for metrics and the dead-letter record.
    """

    ok: bool
    retry: bool
    reason: str
    delay: float | None = None


def backoff(attempt: int, base: float, cap: float, rand: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, capped,
    with "equal jitter" (half fixed, half random) so endpoints that failed together
    do not all come back at the same instant."""
    r = rand or random
    step = backoff_step(attempt, base, cap)
    return step / 2 + r.uniform(0, step / 2)


def backoff_step(attempt: int, base: float, cap: float) -> float:
    """The delay after failed attempt ``attempt`` (1-based) before any jitter: ``base``
    doubling per attempt, capped at ``cap``. Alone where the delay must be exact (the
    supervisor's restarts)."""
    return min(cap, base * 2 ** max(0, attempt - 1))


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header (delta seconds or an HTTP date) in seconds, if valid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def judge(
    status: int | None, error: str | None = None, retry_after_header: str | None = None
) -> Verdict:
    """Classify one attempt. ``status`` is None when there was no HTTP answer
    (``error`` then names it: timeout, connection, dns, refused)."""
    if status is None:
        # A refused address is a decision, not a glitch: retrying will not help.
        return Verdict(False, error != "refused", error or "connection")
    if 200 <= status < 300:
        return Verdict(True, False, "delivered")
    if status == 429:
        return Verdict(False, True, "status_429", retry_after(retry_after_header))
    if status >= 500:
        return Verdict(False, True, "status_5xx")
    # Other 4xx (and redirects, which are not followed): the receiver refuses it.
    return Verdict(False, False, "status_4xx" if status >= 400 else "status_3xx")

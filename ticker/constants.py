"""Every Redis key, channel, TTL and close code in one place.

All keys share one hash tag (``{prefix}``) so that the atomic publish step can
touch them together on Redis Cluster too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CLOSE_BAD_REQUEST",
    "CLOSE_ORIGIN_REFUSED",
    "CLOSE_SHUTDOWN",
    "CLOSE_SLOW_CLIENT",
    "CLOSE_TRY_AGAIN",
    "EVENT_TYPES",
    "IDEMPOTENCY_TTL",
    "Keys",
]

# WebSocket close codes. 1xxx are RFC 6455 codes; 4xxx are ours. Clients
# should reconnect (and resume) after CLOSE_SHUTDOWN and CLOSE_SLOW_CLIENT,
# and give up after CLOSE_ORIGIN_REFUSED and CLOSE_BAD_REQUEST.
CLOSE_SHUTDOWN = 1012  # service restart: reconnect, resume by last id
CLOSE_ORIGIN_REFUSED = 1008  # policy violation: terminal
CLOSE_SLOW_CLIENT = 4000  # backlog over its bound: reconnect, resume by last id
CLOSE_TRY_AGAIN = 1013  # Redis unreachable, cannot resume or load now: retry later
CLOSE_BAD_REQUEST = 4400  # bad filter or resume id: terminal

EVENT_TYPES = (
    "snapshot",
    "item.published",
    "item.updated",
    "item.retracted",
    "item.expired",
    "reset",
)

IDEMPOTENCY_TTL = 24 * 3600  # seconds an Idempotency-Key answer is remembered


@dataclass(frozen=True, slots=True)
class Keys:
    """Redis key names under one hash tag."""

    prefix: str = "ticker"

    @property
    def tag(self) -> str:
        return "{" + self.prefix + "}"

    @property
    def events(self) -> str:
        return f"{self.tag}:events"

    @property
    def live(self) -> str:
        return f"{self.tag}:live"

    @property
    def channel(self) -> str:
        return f"{self.tag}:channel"

    @property
    def item_prefix(self) -> str:
        return f"{self.tag}:item:"

    @property
    def queue(self) -> str:
        # arq's queue: a sorted set of job ids plus its own job keys.
        return f"{self.tag}:queue"

    @property
    def stats(self) -> str:
        """Counters the workers keep for /metrics (duplicates, webhook deliveries)."""
        return f"{self.tag}:stats"

    def item(self, item_id: str) -> str:
        return f"{self.item_prefix}{item_id}"

    def history(self, item_id: str) -> str:
        return f"{self.tag}:history:{item_id}"

    def dedupe(self, key: str) -> str:
        return f"{self.tag}:dedupe:{key}"

    def recent(self, edition: str) -> str:
        """Sorted set of recently published item ids per edition, for near-duplicates."""
        return f"{self.tag}:recent:{edition}"

    def idempotency(self, principal: str, key: str) -> str:
        return f"{self.tag}:idem:{principal}:{key}"

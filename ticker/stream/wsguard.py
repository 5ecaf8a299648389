"""What a WebSocket client may send: nothing is expected, a little is tolerated.

The ticker's WebSocket is one-way; clients have nothing to say, but some libraries send
their own keepalive text now and then. Junk (text or binary) is read and dropped. A client
that floods faster than :data:`MESSAGES_PER_SECOND` beyond a burst of :data:`BURST` is cut
with close code 1008 (policy violation). Oversize frames never get here: the server's
``ws_max_size`` (64 KiB) closes them with 1009 first. Pure; tested without sockets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BURST", "MESSAGES_PER_SECOND", "MessageBudget"]

MESSAGES_PER_SECOND = 5.0
BURST = 50.0


@dataclass(slots=True)
class MessageBudget:
    """A token bucket over a client's incoming messages."""

    rate: float = MESSAGES_PER_SECOND
    burst: float = BURST
    tokens: float = field(init=False)
    last: float | None = None

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self, now: float) -> bool:
        """Spend one message at time ``now``; False once the client is over its budget."""
        if self.last is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

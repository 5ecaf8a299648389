"""What a WebSocket client may send: nothing is expected, a little is tolerated.

The ticker's WebSocket is one-way; clients have nothing to say, but some libraries send
their own keepalive text now and then. Junk (text or binary) is read and dropped. A client
that floods faster than :data:`MESSAGES_PER_SECOND` beyond a burst of :data:`BURST` is cut
with close code 1008 (policy violation). Oversize frames never get here: the server's
``ws_max_size`` (64 KiB) closes them with 1009 first. :class:`MessageCheck` holds a
client's data frames to RFC 6455: a continuation with no message started, or a new message
inside a fragmented one, is a protocol error (1002); a text message that is not UTF-8 is
invalid data (1007). Pure; tested without sockets.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from ticker.constants import CLOSE_INVALID_DATA, CLOSE_PROTOCOL_ERROR

__all__ = [
    "BURST",
    "CLOSE_INVALID_DATA",
    "CLOSE_PROTOCOL_ERROR",
    "MESSAGES_PER_SECOND",
    "MessageBudget",
    "MessageCheck",
]

OP_CONT, OP_TEXT = 0x0, 0x1
_utf8 = codecs.getincrementaldecoder("utf-8")

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


class MessageCheck:
    """A client's data frames, one at a time (opcode, FIN bit, unmasked payload): the close
    code a frame calls for, or None. Text is decoded as it comes, so a character split
    across frames is fine and an invalid one fails at the frame holding it."""

    __slots__ = ("decoder", "open")

    def __init__(self) -> None:
        self.open = False  # a fragmented message is under way
        self.decoder: codecs.IncrementalDecoder | None = None  # when it is text

    def frame(self, opcode: int, fin: bool, payload: bytes) -> int | None:
        if opcode == OP_CONT:
            if not self.open:
                return CLOSE_PROTOCOL_ERROR  # a continuation with no message started
        else:
            if self.open:
                return CLOSE_PROTOCOL_ERROR  # a new message inside a fragmented one
            self.open = True
            self.decoder = _utf8() if opcode == OP_TEXT else None
        if self.decoder is not None:
            try:
                self.decoder.decode(payload, final=fin)
            except UnicodeDecodeError:
                return CLOSE_INVALID_DATA
        if fin:
            self.open, self.decoder = False, None
        return None

    def needs_payload(self, opcode: int) -> bool:
        """Whether ``frame`` reads this frame's payload (text only; else pass b"")."""
        return opcode == OP_TEXT or (opcode == OP_CONT and self.decoder is not None)

"""Why a stream ends, and what each transport says about it: one table.

Every way a client's stream ends is a :class:`Disconnect` (``Client.closed`` holds it).
Its :class:`Rule` says what the WebSocket close frame carries (code and reason text),
whether an SSE stream ends with last words (a comment and a retry hint, so EventSource
reconnects and resumes by its last id), whether the client should reconnect, whether
its buffer is full (then nothing more is queued on a direct write), and the label it is
counted under in ``ticker_clients_dropped`` (none: the client left, or broke the
protocol). The router, the stream gate, the fast lane, parking and the middleware
that refuses a WebSocket all close from this table; docs/operations.md lists it for
client authors. The codes themselves are named in ticker.constants. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ticker.constants import (
    CLOSE_BAD_REQUEST,
    CLOSE_INTERNAL,
    CLOSE_INVALID_DATA,
    CLOSE_ORIGIN_REFUSED,
    CLOSE_POLICY,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_SHUTDOWN,
    CLOSE_SLOW_CLIENT,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
)
from ticker.frames import ws_close_frame

__all__ = ["Disconnect", "Rule", "sse_last_words"]


class Disconnect(StrEnum):
    """Why a stream ended (or was refused); the value is what logs and metrics carry."""

    GONE = "gone"  # the client left, or its connection failed
    SLOW = "slow"  # its backlog passed its bound
    SEND_TIMEOUT = "send_timeout"  # one write stuck for TICKER_CLIENT_SEND_TIMEOUT
    SHUTDOWN = "shutdown"  # the server is stopping (SIGTERM)
    FLOOD = "flood"  # it sent more WebSocket messages than it may (ticker.stream.wsguard)
    # A parked WebSocket's client broke RFC 6455: the connection is failed with a close
    # frame, and the client then counts as gone.
    PROTOCOL_ERROR = "protocol_error"
    BAD_CLOSE = "bad_close"
    INVALID_DATA = "invalid_data"
    TOO_BIG = "too_big"
    PING_TIMEOUT = "ping_timeout"
    # Refused before the stream opens (WebSocket; SSE answers with an HTTP status).
    BAD_REQUEST = "bad_request"  # bad filter or resume id; the close text is the error's
    TRY_AGAIN = "try_again"  # Redis unreachable and the open needs it
    ORIGIN_REFUSED = "origin_refused"  # a page's origin the policy does not admit
    TOO_MANY = "too_many_connections"  # the address is at its cap (a server without 429s)

    @property
    def rule(self) -> Rule:
        return RULES[self]

    def ws_close_message(self) -> dict[str, object]:
        """The ASGI ``websocket.close`` message for this reason."""
        return {"type": "websocket.close", "code": self.code, "reason": RULES[self].text}

    @property
    def code(self) -> int:
        """The WebSocket close code, for a reason that sends a close frame."""
        code = RULES[self].code
        if code is None:
            raise ValueError(f"{self} sends no close frame")
        return code

    def ws_close(self) -> bytes:
        """The WebSocket close frame for this reason, or b"" where none is sent."""
        rule = RULES[self]
        return b"" if rule.code is None else ws_close_frame(rule.code, rule.text)


@dataclass(frozen=True, slots=True)
class Rule:
    code: int | None  # the WebSocket close code; None: no close frame (the client left)
    text: str  # the close frame's reason text
    reconnect: bool  # whether the client should come back (and resume by its last id)
    sse_last_words: bool = False  # SSE: end with a comment and a retry hint
    behind: bool = False  # its buffer is full: a direct write queues nothing after it
    label: str | None = None  # counted in ticker_clients_dropped under this reason


RULES: dict[Disconnect, Rule] = {
    Disconnect.GONE: Rule(None, "", reconnect=True),
    Disconnect.SLOW: Rule(
        CLOSE_SLOW_CLIENT, "slow", True, sse_last_words=True, behind=True, label="slow"
    ),
    Disconnect.SEND_TIMEOUT: Rule(
        CLOSE_SLOW_CLIENT,
        "send_timeout",
        True,
        sse_last_words=True,
        behind=True,
        label="send_timeout",
    ),
    Disconnect.SHUTDOWN: Rule(
        CLOSE_SHUTDOWN, "shutdown", True, sse_last_words=True, label="shutdown"
    ),
    # Only a WebSocket floods; an SSE client has no way to send.
    Disconnect.FLOOD: Rule(CLOSE_POLICY, "flood", False, sse_last_words=True, label="flood"),
    Disconnect.PROTOCOL_ERROR: Rule(CLOSE_PROTOCOL_ERROR, "protocol error", False),
    Disconnect.BAD_CLOSE: Rule(CLOSE_PROTOCOL_ERROR, "bad close frame", False),
    Disconnect.INVALID_DATA: Rule(CLOSE_INVALID_DATA, "invalid UTF-8", False),
    Disconnect.TOO_BIG: Rule(CLOSE_TOO_BIG, "frame too big", False),
    Disconnect.PING_TIMEOUT: Rule(CLOSE_INTERNAL, "keepalive ping timeout", True),
    Disconnect.BAD_REQUEST: Rule(CLOSE_BAD_REQUEST, "bad request", False),
    Disconnect.TRY_AGAIN: Rule(CLOSE_TRY_AGAIN, "try again later", True),
    Disconnect.ORIGIN_REFUSED: Rule(CLOSE_ORIGIN_REFUSED, "origin not allowed", False),
    Disconnect.TOO_MANY: Rule(CLOSE_POLICY, "too many connections", False),
}


def sse_last_words(reason: Disconnect, retry_ms: int) -> bytes:
    """The comment and retry hint an SSE stream the server cuts ends with (b"" if none):
    EventSource reconnects (to another node) and resumes by its last id."""
    if not RULES[reason].sse_last_words:
        return b""
    return b": %s; reconnect with Last-Event-ID\nretry: %d\n\n" % (reason.encode(), retry_ms)

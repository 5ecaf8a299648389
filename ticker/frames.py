"""Wire encodings built once per event and shared by every client (pure): HTTP
chunks and WebSocket frames, and the bounds on what a client may send or keep.
"""

from __future__ import annotations

import struct

__all__ = [
    "DROP_AFTER",
    "WS_MAX_SIZE",
    "chunk",
    "ws_close_frame",
    "ws_frame_size",
    "ws_text_frame",
]

# The largest frame a WebSocket client may send (the server's ws_max_size): clients
# have nothing big to say.
WS_MAX_SIZE = 64 * 1024

# Seconds a cut slow client gets to read its backlog (and, on WebSocket, the
# close frame with CLOSE_SLOW_CLIENT) before the connection is dropped.
DROP_AFTER = 10.0


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (the server set chunked transfer encoding)."""
    return b"%x\r\n" % len(data) + data + b"\r\n"


def ws_text_frame(payload: bytes) -> bytes:
    """An unmasked, final WebSocket text frame (RFC 6455 5.2): servers never mask."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 1 << 16:
        head = b"\x81\x7e" + struct.pack("!H", n)
    else:
        head = b"\x81\x7f" + struct.pack("!Q", n)
    return head + payload


def ws_frame_size(buf: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """The payload length and the header's length (mask key excluded) of the
    WebSocket frame starting at ``pos``; None while the header is incomplete."""
    left = len(buf) - pos
    if left < 2:
        return None
    length = buf[pos + 1] & 0x7F
    if length == 126:
        return (int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4) if left >= 4 else None
    if length == 127:
        return (int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10) if left >= 10 else None
    return length, 2


def ws_close_frame(code: int, reason: str) -> bytes:
    body = struct.pack("!H", code) + reason.encode()[:120]
    return bytes((0x88, len(body))) + body

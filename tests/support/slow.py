"""Slow clients on demand: a socket that reads little, and a flood of big events."""

from __future__ import annotations

import socket

from workers.publish import Publisher

__all__ = ["BODY", "flood", "tiny_socket"]

BODY = "x" * 20_000  # big events fill kernel buffers quickly


def tiny_socket(port: int) -> socket.socket:
    """A connection to the API whose receive buffer is tiny: a client slow to read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def flood(stack: object, n: int) -> None:
    """Publish ``n`` big events straight to the stream (the atomic step, no worker)."""
    s = stack.settings  # type: ignore[attr-defined]
    keys = stack.keys  # type: ignore[attr-defined]
    pub = Publisher(
        stack.redis,
        keys,
        maxlen=s.stream_maxlen,  # type: ignore[attr-defined]
        retention_seconds=s.stream_retention_seconds,
    )
    for i in range(n):
        item = {
            "id": f"flood-{i}",
            "version": 1,
            "headline": f"Flood {i}",
            "edition": "en",
            "categories": [],
            "regions": [],
            "urgency": 5,
            "body": BODY,
        }
        await pub.publish_new(item)

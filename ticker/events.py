"""Event envelopes (pure): parse once, encode once per transport.

The stream stores each event's JSON body without its id (the id is only known
once XADD runs); ``envelope()`` splices the stream id in front, byte for byte
the same way the Lua publish step does for the pub/sub message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from ticker.filters import Filter, Subject
from ticker.frames import chunk, ws_text_frame

__all__ = [
    "ZERO_ID",
    "Event",
    "envelope",
    "event_id",
    "parse_event_id",
    "parse_stream_id",
    "ping_frame",
    "reset_event",
    "snapshot_event",
]

ZERO_ID = "0-0"
# An event id: the Redis stream id, then the data's epoch (ticker.epoch) after a dot.
_ID = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?(?:\.([0-9A-Za-z_]{1,32}))?$")

StreamKey = tuple[int, int]


def parse_stream_id(value: str) -> StreamKey:
    """Parse an event id "ms-seq.epoch", or a plain stream id "ms-seq" (or "ms"), into
    its place in the stream; raise ValueError if malformed."""
    return parse_event_id(value)[0]


def parse_event_id(value: str) -> tuple[StreamKey, str]:
    """An event id's place in the stream and its epoch ("" for a plain stream id)."""
    m = _ID.match(value.strip())
    if not m:
        raise ValueError(f"not a stream id: {value!r}")
    return (int(m.group(1)), int(m.group(2) or 0)), m.group(3) or ""


def event_id(stream_id: str, epoch: str) -> str:
    """The id clients see: the stream id, and the epoch the stream belongs to."""
    return f"{stream_id}.{epoch}" if epoch else stream_id


def envelope(stream_id: str, body: bytes) -> bytes:
    """The full envelope: ``{"id": <stream id>, ...body's fields}``."""
    return b'{"id":"' + stream_id.encode() + b'",' + body[1:]


class Event:
    """One event, decoded once; its per-transport encodings are built on first use."""

    __slots__ = (
        "_chunk",
        "_frame",
        "_sse",
        "_text",
        "data",
        "epoch",
        "id",
        "key",
        "payload",
        "subjects",
        "type",
    )

    def __init__(self, payload: bytes, data: dict[str, Any] | None = None) -> None:
        self.payload = payload
        self.data: dict[str, Any] = orjson.loads(payload) if data is None else data
        self.id: str = self.data["id"]
        self.type: str = self.data["type"]
        self.key, self.epoch = parse_event_id(self.id)
        item = self.data.get("item")
        # An update matches a filter that matched the item before or after it changed,
        # so a client never keeps a stale version of an item that moved section.
        subjects = []
        if item is not None:
            subjects.append(Subject.of(item))
        if previous := self.data.get("previous"):
            subjects.append(Subject.of(previous))
        self.subjects: tuple[Subject, ...] = tuple(subjects)
        self._sse: bytes | None = None
        self._text: str | None = None
        self._chunk: bytes | None = None
        self._frame: bytes | None = None

    @classmethod
    def from_entry(cls, stream_id: str, fields: Mapping[bytes, bytes], epoch: str = "") -> Event:
        """An event read from the stream; its id carries ``epoch`` (none for webhooks)."""
        return cls(envelope(event_id(stream_id, epoch), fields[b"data"]))

    @property
    def item_id(self) -> str | None:
        item = self.data.get("item")
        return item["id"] if item else None

    def matches(self, f: Filter) -> bool:
        return any(f.matches(s) for s in self.subjects)

    @property
    def sse(self) -> bytes:
        """The SSE frame. orjson escapes every control character, so data is one line."""
        if self._sse is None:
            self._sse = (
                b"id: "
                + self.id.encode()
                + b"\nevent: "
                + self.type.encode()
                + b"\ndata: "
                + self.payload
                + b"\n\n"
            )
        return self._sse

    @property
    def sse_chunk(self) -> bytes:
        """The SSE frame as one HTTP chunk, for direct writes."""
        if self._chunk is None:
            self._chunk = chunk(self.sse)
        return self._chunk

    @property
    def ws_frame(self) -> bytes:
        """The WebSocket text frame, for direct writes."""
        if self._frame is None:
            self._frame = ws_text_frame(self.payload)
        return self._frame

    @property
    def text(self) -> str:
        """The WebSocket text message."""
        if self._text is None:
            self._text = self.payload.decode()
        return self._text

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.type} {self.item_id}>"


def snapshot_event(stream_id: str, items: Iterable[Mapping[str, Any]]) -> Event:
    data = {"id": stream_id, "type": "snapshot", "items": list(items)}
    return Event(orjson.dumps(data), data)


def reset_event(stream_id: str, reason: str) -> Event:
    data = {"id": stream_id, "type": "reset", "reason": reason}
    return Event(orjson.dumps(data), data)


def ping_frame(stream_id: str) -> bytes:
    """SSE heartbeat. Its id line moves the client's Last-Event-ID to the hub's
    position, so an idle, narrowly filtered client does not fall out of retention."""
    return b": ping\nid: " + stream_id.encode() + b"\n\n"

"""An incremental Server-Sent Events parser (pure), per the WHATWG rules."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEMessage", "SSEParser"]


@dataclass(frozen=True, slots=True)
class SSEMessage:
    event: str
    data: str
    id: str | None  # the last event id in force after this message


class SSEParser:
    """Feed bytes as they arrive; get back complete messages."""

    def __init__(self) -> None:
        self._buf = b""
        self._event = ""
        self._data: list[str] = []
        self.last_id: str | None = None
        self.retry: int | None = None
        self._after_cr = False

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]  # the LF of a CRLF split across chunks
        self._after_cr = False
        self._buf += chunk
        out: list[SSEMessage] = []
        while True:
            lf, cr = self._buf.find(b"\n"), self._buf.find(b"\r")
            if lf == -1 and cr == -1:
                return out
            if cr == -1 or (lf != -1 and lf < cr):
                end, nxt = lf, lf + 1
            elif cr + 1 == len(self._buf):
                end, nxt = cr, cr + 1
                self._after_cr = True
            else:
                end, nxt = cr, cr + (2 if self._buf[cr + 1 : cr + 2] == b"\n" else 1)
            line = self._buf[:end].decode("utf-8", "replace")
            self._buf = self._buf[nxt:]
            if message := self._line(line):
                out.append(message)

    def _line(self, line: str) -> SSEMessage | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            msg = SSEMessage(self._event or "message", "\n".join(self._data), self.last_id)
            self._event, self._data = "", []
            return msg
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value)
        return None

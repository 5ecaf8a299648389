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

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        self._buf += chunk
        out: list[SSEMessage] = []
        while True:
            cut = _line_end(self._buf)
            if cut is None:
                return out
            end, nxt = cut
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


def _line_end(buf: bytes) -> tuple[int, int] | None:
    """Where the first line ends (CRLF, LF or CR) and where the next begins."""
    lf, cr = buf.find(b"\n"), buf.find(b"\r")
    if cr == -1 and lf == -1:
        return None
    if cr == -1 or (lf != -1 and lf < cr):
        return lf, lf + 1
    if cr + 1 == len(buf):
        return None  # a CR at the end may be the first half of CRLF
    return cr, cr + (2 if buf[cr + 1 : cr + 2] == b"\n" else 1)

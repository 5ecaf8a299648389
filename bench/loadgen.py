"""One load-generating process: holds many SSE or WebSocket connections and
records, for each event received, how long ago it was published.

Raw asyncio protocols on uvloop, so the client costs a few microseconds per
event and stays out of the server's way. Events carry a marker in their text,
``bseq=NNNNNN bt=TTTTTTTTTTTTTTTT`` (sequence number, send time in us since
the epoch); Ticker's envelope also carries its stream id, whose milliseconds
are the moment Redis published it.

Run by bench.run: ``python -m bench.loadgen '<json config>'``. It prints one
JSON line when its connections are up ({"ready"}), one when every connection
has every event ({"complete"}), and, after "finish" on stdin, writes the
delays to ``<out>.bt`` / ``<out>.sid`` (array of doubles, ms) and prints {"done"}.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import sys
import time
from array import array
from pathlib import Path
from typing import Any

import orjson

from ticker.frames import ws_frame_size

MARK = re.compile(rb"bseq=(\d{6}) bt=(\d{16})")
# Ticker: the envelope's stream id comes first, then the item with the marker.
# (After it, since epochs, a dot and the data's epoch: ticker.epoch.)
TICKER_MARK = re.compile(
    rb'"id":"(\d{13})-(\d+)(?:\.[0-9A-Za-z_]+)?",[^\n]*?bseq=(\d{6}) bt=(\d{16})'
)
TAIL = 8192  # bytes kept between reads so a marker split across reads is found
WS_KEY = base64.b64encode(os.urandom(16)).decode()


class Run:
    """What the connections of this process share: counters and delay arrays."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.events: int = cfg["events"]
        self.first_seq: int = cfg.get("first_seq", 0)
        # Replayed events (resume) arrive late by design: no delay recorded for them.
        self.measure_after: int = cfg.get("measure_after", 0)
        self.ticker: bool = cfg["server"].split("@")[0] == "ticker"
        self.live = 0  # deliveries past the replayed ones
        self.last_at = 0.0  # wall time of the last delivery
        self.lat_bt = array("d")
        self.lat_sid = array("d")
        self.ok = 0
        self.complete = 0
        self.closed = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.all_done = asyncio.Event()

    def finished_one(self) -> None:
        self.complete += 1
        if self.complete == self.ok:
            self.all_done.set()


class Conn(asyncio.Protocol):
    __slots__ = ("buf", "count", "head", "last", "ready", "run", "seen", "transport", "ws")

    def __init__(self, run: Run, ws: bool) -> None:
        self.run, self.ws = run, ws
        self.head = b""
        self.buf = b""
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        # Order is the stream's (Ticker's ids; Nchan's is the publishing order), which
        # through the intake need not be the order the items were posted in.
        self.last = 0
        self.seen = bytearray(run.first_seq + run.events + 1)  # by marker: each once
        self.count = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_result(False)
        elif self.count < self.run.events:
            self.run.closed += 1

    def data_received(self, data: bytes) -> None:
        if not self.ready.done():
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.head[: self.head.find(b"\r\n")]
            ok = b" 101 " in status if self.ws else b" 200 " in status
            data, self.head = self.head[end + 4 :], b""
            self.ready.set_result(ok)
            if not ok:
                return
        if self.ws:
            self._frames(data)
        else:
            self._scan(data)

    def _scan(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        end = self._match(buf)
        self.buf = buf[end:] if len(buf) - end <= TAIL else buf[-TAIL:]

    def _match(self, buf: bytes) -> int:
        """Record every marker in ``buf``; return where the last one ends."""
        end = 0
        if self.run.ticker:
            for m in TICKER_MARK.finditer(buf):
                ms = int(m.group(1))
                self._got(int(m.group(3)), int(m.group(4)), ms, ms * 1_000_000 + int(m.group(2)))
                end = m.end()
        else:
            for m in MARK.finditer(buf):
                seq = int(m.group(1))
                self._got(seq, int(m.group(2)), 0, seq)
                end = m.end()
        return end

    def _frames(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos, size = 0, len(buf)
        while (frame := ws_frame_size(buf, pos)) is not None:
            n, head = frame  # server frames are not masked
            if size - pos < head + n:
                break
            opcode = buf[pos] & 0x0F
            payload = buf[pos + head : pos + head + n]
            pos += head + n
            if opcode in (0, 1):
                self._match(payload)  # servers send each event as one frame
            elif opcode == 9:  # ping: answer with a masked pong
                assert self.transport is not None
                self.transport.write(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)
        self.buf = buf[pos:]

    def _got(self, seq: int, bt_us: int, sid_ms: int, order: int) -> None:
        now = time.time()
        run = self.run
        if seq <= run.first_seq or seq >= len(self.seen) or self.seen[seq]:
            run.duplicates += 1  # seen, or before the resume point
            return
        self.seen[seq] = 1
        if order <= self.last:
            run.out_of_order += 1
        self.last = order
        run.last_at = now
        if seq > run.measure_after:
            run.live += 1
            run.lat_bt.append(now * 1e3 - bt_us / 1e3)
            if sid_ms:
                run.lat_sid.append(now * 1e3 - sid_ms)
        self.count += 1
        if self.count == run.events:
            run.finished_one()


def request(cfg: dict[str, Any]) -> bytes:
    path, last_id = cfg["path"], cfg.get("last_event_id")
    if last_id and cfg["transport"] == "ws":
        path += ("&" if "?" in path else "?") + f"last_event_id={last_id}"
    lines = [f"GET {path} HTTP/1.1", f"Host: {cfg['host']}:{cfg['port']}"]
    if last_id and cfg["transport"] == "sse":
        lines.append(f"Last-Event-ID: {last_id}")
    if cfg["transport"] == "ws":
        lines += [
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {WS_KEY}",
            "Sec-WebSocket-Version: 13",
        ]
    else:
        lines.append("Accept: text/event-stream")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def main(cfg: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    run = Run(cfg)
    ws = cfg["transport"] == "ws"
    req = request(cfg)
    sources: list[str] = cfg["sources"]
    gate = asyncio.Semaphore(cfg.get("concurrency", 256))
    conns: list[Conn] = []
    failed = 0

    async def open_one(i: int) -> None:
        nonlocal failed
        conn: Conn | None = None
        async with gate:
            try:
                transport, conn = await loop.create_connection(
                    lambda: Conn(run, ws),
                    cfg["host"],
                    cfg["port"],
                    local_addr=(sources[i % len(sources)], 0),
                )
                transport.write(req)
                ok = await asyncio.wait_for(asyncio.shield(conn.ready), 30)
            except (OSError, TimeoutError):
                ok = False
            if not ok and conn is not None and conn.transport is not None:
                conn.transport.abort()
        if ok and conn is not None:
            conns.append(conn)
            run.ok += 1
        else:
            failed += 1

    await asyncio.sleep(max(0.0, cfg["start_at"] - time.time()))
    first = time.time()
    await asyncio.gather(*(open_one(i) for i in range(cfg["count"])))
    last = time.time()
    emit({"ready": True, "ok": run.ok, "failed": failed, "first": first, "last": last})

    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    finish = asyncio.ensure_future(stdin.readline())
    done = asyncio.ensure_future(run.all_done.wait())
    await asyncio.wait([finish, done], return_when=asyncio.FIRST_COMPLETED)
    if done.done():
        emit({"complete": True, "at": time.time()})
        await finish
    done.cancel()

    Path(cfg["out"] + ".bt").write_bytes(run.lat_bt.tobytes())  # noqa: ASYNC240
    Path(cfg["out"] + ".sid").write_bytes(run.lat_sid.tobytes())  # noqa: ASYNC240
    emit(
        {
            "done": True,
            "delivered": sum(c.count for c in conns),
            "live": run.live,
            "duplicates": run.duplicates,
            "out_of_order": run.out_of_order,
            "closed_early": run.closed,
            "complete": run.complete,
            "last_at": run.last_at,
        }
    )
    for c in conns:
        if c.transport is not None:
            c.transport.abort()


def emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(doc).decode() + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    config = orjson.loads(sys.argv[1])
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(config))
    else:
        uvloop.run(main(config))

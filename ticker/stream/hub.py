"""The in-process hub: one per API process, fed by the one Redis subscription.

It keeps a mirror of the live ticker (so a new client's snapshot needs no
Redis round trip and lines up exactly with the live events after it), groups
clients by filter (each distinct filter is evaluated once per event), and
hands each client its events through a bounded buffer that a per-client
writer drains. The fan-out loop never awaits a client.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from ticker.disconnect import Disconnect
from ticker.events import (
    Event,
    StreamKey,
    event_id,
    parse_stream_id,
    ping_frame,
    reset_event,
    snapshot_event,
)
from ticker.filters import Filter, Subject
from ticker.frames import chunk
from ticker.serve.transport import DirectTransport

__all__ = ["Client", "Hub", "Ping", "Run"]

log = logging.getLogger("ticker.stream.hub")


class Ping:
    """Heartbeat marker in a client's buffer, with the hub position when queued."""

    __slots__ = ("id", "sse", "sse_chunk", "ws_frame")

    def __init__(self, stream_id: str) -> None:
        self.id = stream_id
        self.sse = ping_frame(stream_id)
        self.sse_chunk = chunk(self.sse)
        self.ws_frame = b""  # WebSocket keepalive is the protocol's own ping


Frame = Event | Ping


class Run:
    """Consecutive events for one filter, written at once to each direct client."""

    __slots__ = ("_chunk", "_frames", "events")

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self._chunk: bytes | None = None
        self._frames: bytes | None = None

    @property
    def sse_chunk(self) -> bytes:
        """Their SSE frames as one HTTP chunk."""
        if self._chunk is None:
            self._chunk = chunk(b"".join(e.sse for e in self.events))
        return self._chunk

    @property
    def ws_frame(self) -> bytes:
        if self._frames is None:
            self._frames = b"".join(e.ws_frame for e in self.events)
        return self._frames


class Client:
    """One connected SSE or WebSocket client: its filter and its bounded buffer."""

    __slots__ = (
        "_waiter",
        "after",
        "buffer",
        "busy_since",
        "byte_limit",
        "closed",
        "direct",
        "filter",
        "limit",
        "on_cut",
        "transport",
        "wire",
    )

    def __init__(
        self,
        filter: Filter,
        limit: int,
        transport: str,
        on_cut: Callable[[Client], None] | None = None,
    ) -> None:
        self.filter = filter
        self.limit = limit
        self.transport = transport
        # A list and a bare future rather than a deque and an asyncio.Event: a
        # client lives for hours, and those two cost more than the rest of it
        # (docs/benchmarks.md).
        self.buffer: list[Frame] = []
        self._waiter: asyncio.Future[None] | None = None
        self.closed: Disconnect | None = None
        # While set, events at or before this stream key were already sent (resume).
        self.after: tuple[int, int] | None = None
        self.busy_since = 0.0  # loop time a write started; 0 when idle
        self.on_cut = on_cut
        # Set once the client is caught up and its server allows direct writes:
        # the transport, and which shared encoding it takes (an Event attribute).
        self.direct: DirectTransport | None = None
        self.wire = "sse_chunk"
        self.byte_limit = limit * 1024

    def go_direct(self, transport: DirectTransport, wire: str) -> bool:
        """Switch to direct writes; only between events (nothing buffered or pending)."""
        if self.buffer or self.after is not None or self.closed:
            return False
        self.direct, self.wire = transport, wire
        return True

    def push_run(self, run: Run) -> None:
        if self.direct is not None:
            self.push(run)
        else:
            for event in run.events:
                self.push(event)

    def push(self, frame: Frame | Run) -> None:
        if self.closed:
            return
        direct = self.direct
        if direct is not None:
            if direct.is_closing():
                self.cut(Disconnect.GONE)
            elif direct.get_write_buffer_size() > self.byte_limit:
                self.cut(Disconnect.SLOW)
            elif data := getattr(frame, self.wire):
                try:
                    direct.write(data)
                except (RuntimeError, OSError):  # closed under us: never stop the fan-out
                    self.cut(Disconnect.GONE)
            return
        if len(self.buffer) >= self.limit:
            self.cut(Disconnect.SLOW)
            return
        self.buffer.append(frame)  # type: ignore[arg-type]  # push_run splits runs here
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        assert self._waiter is None, "one writer per client"
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def cut(self, reason: Disconnect) -> None:
        """Disconnect this client (ticker.disconnect: why, and what it is told)."""
        if self.closed:
            return
        self.closed = reason
        self.buffer.clear()
        self._wake()
        if self.on_cut is not None:
            self.on_cut(self)

    async def wait_closed(self) -> None:
        """Direct clients have nothing to drain: wait until the client is cut."""
        while not self.closed:
            await self._wait()

    async def next_batch(self) -> list[Frame]:
        """Everything waiting (coalesced into one write), or [] once closed."""
        while not self.buffer and not self.closed:
            await self._wait()
        if self.closed:
            return []
        batch, self.buffer = self.buffer, []
        if self.after is not None:
            batch = self._past_resume_point(batch)
        return batch

    def _past_resume_point(self, batch: list[Frame]) -> list[Frame]:
        after = self.after
        out = [f for f in batch if not isinstance(f, Event) or f.key > after]  # type: ignore[operator]
        if any(isinstance(f, Event) for f in out):
            self.after = None
        return out


class Hub:
    def __init__(
        self,
        client_limit: int = 1000,
        observe: Callable[[Event, int], None] | None = None,
        on_reset: Callable[[str], None] | None = None,
        recent: int = 1000,
    ) -> None:
        self.client_limit = client_limit
        # Called once per dispatched event with its delivery count (metrics), and
        # once per reset with its scope ("node": lost its place; "epoch": data lost).
        self.observe = observe
        self.on_reset = on_reset
        self.groups: dict[Filter, set[Client]] = {}
        self.last_key = (0, 0)
        self.epoch = ""  # the data's epoch (ticker.epoch), from the last load
        self.items: dict[str, dict[str, Any]] = {}  # live mirror, in publish order
        self.subjects: dict[str, Subject] = {}
        self.ready = asyncio.Event()
        self._snapshots: dict[Filter, Event] = {}
        self.delivered = 0
        self.closing: Disconnect | None = None  # set by close_all: later clients are cut at once
        self.emptied = asyncio.Event()  # set once the last client has gone after close_all
        # The latest events, oldest first, to resume clients from memory: every
        # event after ``recent_floor`` is here (a reconnect wave reads no events
        # from Redis, only its verdict on retention).
        self.recent: deque[Event] = deque(maxlen=recent)
        self.recent_floor: StreamKey = (0, 0)
        self._pending: list[Event] = []  # dispatch_soon's, until flushed
        self._flush_handle: asyncio.Handle | None = None

    # -- state ---------------------------------------------------------------

    @property
    def last_id(self) -> str:
        """The stream id the hub has applied everything up to (for Redis)."""
        return f"{self.last_key[0]}-{self.last_key[1]}"

    @property
    def token(self) -> str:
        """The hub's position as clients see it: the stream id and the epoch."""
        return event_id(self.last_id, self.epoch)

    def load(self, last_id: str, items: Iterable[dict[str, Any]], epoch: str = "") -> None:
        """Replace the mirror with a snapshot read from Redis at ``last_id``."""
        self.flush()
        self.items = {item["id"]: item for item in items}
        self.subjects = {i: Subject.of(item) for i, item in self.items.items()}
        self.last_key, self.epoch = parse_stream_id(last_id), epoch
        self.recent.clear()
        self.recent_floor = self.last_key
        self._snapshots.clear()
        self.ready.set()

    def reset(
        self,
        last_id: str,
        items: Iterable[dict[str, Any]],
        reason: str,
        epoch: str = "",
        scope: str = "node",
    ) -> None:
        """The hub lost its place in the stream (or the data changed epoch): reload,
        forget the replay cache, and restart every client with a reset and a snapshot."""
        log.warning("hub reset at %s: %s", event_id(last_id, epoch), reason)
        if self.on_reset is not None:
            self.on_reset(scope)
        self.load(last_id, items, epoch)
        notice = reset_event(self.token, reason)
        for f, clients in self.groups.items():
            snap = self.snapshot(f)
            for c in list(clients):
                c.after = None
                c.push(notice)
                c.push(snap)

    def snapshot(self, f: Filter) -> Event:
        """The current state for a filter, encoded once per filter per state."""
        snap = self._snapshots.get(f)
        if snap is None:
            items = [it for i, it in reversed(self.items.items()) if f.matches(self.subjects[i])]
            snap = self._snapshots[f] = snapshot_event(self.token, items)
        return snap

    # -- fan-out -------------------------------------------------------------

    def dispatch_soon(self, event: Event) -> None:
        """Dispatch ``event`` once the subscriber yields: events that arrive together
        (the hub fell behind the publisher) go out together, one write per client."""
        self._pending.append(event)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Dispatch what ``dispatch_soon`` queued (before anything else touches the hub)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        events, self._pending = self._pending, []
        if events:
            self._dispatch(events)

    def dispatch(self, event: Event) -> bool:
        """Apply one event in stream order and hand it to matching clients."""
        if self._pending:
            self.flush()
        return self._dispatch([event])

    def _dispatch(self, events: list[Event]) -> bool:
        """Apply ``events`` in stream order (dropping those already seen: catch-up
        overlaps pub/sub); each client gets those matching its filter in one write."""
        fresh = []
        for event in events:
            # (An event of another epoch waits for the subscriber's reset: ticker.epoch.)
            if event.key > self.last_key and (not event.epoch or event.epoch == self.epoch):
                self._apply(event)
                self._remember(event)
                self.last_key = event.key
                fresh.append(event)
        if not fresh:
            return False
        self._snapshots.clear()
        counts = [0] * len(fresh)
        for f, clients in self.groups.items():
            matching = [i for i, event in enumerate(fresh) if event.matches(f)]
            for i in matching:
                counts[i] += len(clients)
            if len(matching) == 1:
                one = fresh[matching[0]]
                for c in clients:
                    c.push(one)
            elif matching:
                run = Run([fresh[i] for i in matching])
                for c in clients:
                    c.push_run(run)
        self.delivered += sum(counts)
        if self.observe is not None:
            for event, n in zip(fresh, counts, strict=True):
                self.observe(event, n)
        return True

    def _remember(self, event: Event) -> None:
        recent = self.recent
        if recent.maxlen:
            if len(recent) == recent.maxlen:
                self.recent_floor = recent[0].key  # about to be dropped
            recent.append(event)

    def replay(self, f: Filter, after: StreamKey) -> list[Event] | None:
        """The events after ``after`` matching ``f``, in order, from memory; None when
        memory does not reach back that far."""
        if not self.recent.maxlen or after < self.recent_floor:
            return None
        missed = []
        for event in reversed(self.recent):
            if event.key <= after:
                break
            if event.matches(f):
                missed.append(event)
        missed.reverse()
        return missed

    def _apply(self, event: Event) -> None:
        item = event.data.get("item")
        if item is None:
            return
        if event.type in ("item.published", "item.updated"):
            self.items[item["id"]] = item
            self.subjects[item["id"]] = Subject.of(item)
        elif event.type in ("item.retracted", "item.expired"):
            self.items.pop(item["id"], None)
            self.subjects.pop(item["id"], None)
            if event.type == "item.retracted":
                self._forget(item["id"])

    def _forget(self, item_id: str) -> None:
        """A kill: drop the item's earlier events from the replay cache, as the publish
        step drops them from the stream (a resume from before them gets a reset)."""
        kept = [e for e in self.recent if (e.data.get("item") or {}).get("id") != item_id]
        if len(kept) < len(self.recent):
            self.recent = deque(kept, maxlen=self.recent.maxlen)

    def attach(self, client: Client) -> None:
        self.groups.setdefault(client.filter, set()).add(client)
        if self.closing:
            client.cut(self.closing)  # shutting down: it gets its first frames, then the cut

    def detach(self, client: Client) -> None:
        group = self.groups.get(client.filter)
        if group is not None:
            group.discard(client)
            if not group:
                del self.groups[client.filter]
                self._snapshots.pop(client.filter, None)
        if self.closing and not self.groups:
            self.emptied.set()

    def clients(self) -> Iterable[Client]:
        for group in self.groups.values():
            yield from group

    @property
    def client_count(self) -> int:
        return sum(len(g) for g in self.groups.values())

    def heartbeat(self, now: float, send_timeout: float) -> None:
        """Queue a ping for every client; cut those stuck in one write too long."""
        self.flush()
        ping = Ping(self.token)
        for c in list(self.clients()):
            if c.direct is not None:
                # A direct client is stuck if its buffer has not emptied for a while.
                if not c.direct.get_write_buffer_size():
                    c.busy_since = 0.0
                elif not c.busy_since:
                    c.busy_since = now
            if c.busy_since and now - c.busy_since > send_timeout:
                c.cut(Disconnect.SEND_TIMEOUT)
            else:
                c.push(ping)

    def close_all(self, reason: Disconnect) -> None:
        self.closing = reason
        for c in list(self.clients()):
            c.cut(reason)
        if not self.groups:
            self.emptied.set()

"""The fan-out's fast paths, as served: direct writes under uvloop, a broken
transport never stops the fan-out, and a stream keeps nothing of its first frames."""

from __future__ import annotations

import asyncio
import gc
import sys
from typing import Any

import orjson
import pytest
import uvloop

from tests.support.helpers import sse, wait_for, ws
from tests.support.stack import Stack
from ticker.events import Event, envelope
from ticker.filters import Filter
from ticker.frames import chunk
from ticker.serve.transport import transport_of
from ticker.stream.hub import Client, Hub


class _Cycle:
    """Stands for uvicorn's request cycle: its ``send`` is a bound method."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    async def send(self, message: dict[str, Any]) -> None: ...


def test_direct_writes_recognise_uvloop_transports() -> None:
    """`ticker serve` runs on uvloop, whose transports are not asyncio.BaseTransport."""

    async def check() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        try:
            assert not isinstance(transport, asyncio.BaseTransport)
            assert transport_of(_Cycle(transport).send) is transport
        finally:
            transport.close()
            server.close()
            await server.wait_closed()

    uvloop.run(check())


class _Transport:
    def __init__(self, fail: bool = False) -> None:
        self.fail, self.written = fail, b""

    def write(self, data: bytes) -> None:
        if self.fail:
            raise RuntimeError("handle is closed")
        self.written += data

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None: ...
    def abort(self) -> None: ...


async def test_a_transport_failing_on_write_is_cut_and_the_rest_still_get_the_event() -> None:
    hub = Hub()
    hub.load("1-0", [])
    broken, fine = Client(Filter(), 10, "sse"), Client(Filter(), 10, "sse")
    bad, good = _Transport(fail=True), _Transport()
    for client, transport in ((broken, bad), (fine, good)):
        hub.attach(client)
        assert client.go_direct(transport, "sse_chunk")
    body = orjson.dumps({"type": "item.published", "item": {"id": "a", "edition": "en"}})
    event = Event(envelope("2-0", body))
    assert hub.dispatch(event)
    assert broken.closed == "gone"
    assert good.written == event.sse_chunk


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_a_stream_keeps_nothing_of_its_snapshot_once_sent(
    stack: Stack, transport: str
) -> None:
    """The snapshot (or a replay) can be large: an open stream must not pin it."""
    hub = stack.api.app.state.hub
    client = sse(stack.base) if transport == "sse" else ws(stack.base)
    async with client as c:
        assert (await c.next()).type == "snapshot"
        (snapshot,) = hub._snapshots.values()
        item = await stack.publish("Snapshots are not pinned by open streams")
        assert (await c.next()).data["item"]["id"] == item["id"]
        assert not hub._snapshots  # the hub dropped it when the ticker changed
        gc.collect()
        # Only this function's name and getrefcount's argument refer to it.
        assert sys.getrefcount(snapshot) == 2


async def test_events_arriving_together_go_out_in_one_write_per_client() -> None:
    """Events the subscriber hands over before the hub runs again (it fell behind) are
    written at once: one chunk per SSE client, the frames back to back per WebSocket,
    each filter's own events only; a buffered client gets them one by one; a client
    attached before the flush gets them once, after a snapshot without them."""
    hub = Hub()
    hub.load("1-0", [])
    sse_t, ws_t, ar_t = _Transport(), _Transport(), _Transport()
    sse_c, ws_c = Client(Filter(), 10, "sse"), Client(Filter(), 10, "ws")
    ar_c = Client(Filter(editions=frozenset({"ar"})), 10, "sse")
    buffered = Client(Filter(), 10, "sse")
    for client, transport, wire in (
        (sse_c, sse_t, "sse_chunk"),
        (ws_c, ws_t, "ws_frame"),
        (ar_c, ar_t, "sse_chunk"),
    ):
        hub.attach(client)
        assert client.go_direct(transport, wire)
    hub.attach(buffered)
    writes: list[bytes] = []
    sse_t.write = writes.append  # type: ignore[method-assign]

    def published(stream_id: str, item_id: str, edition: str = "en") -> Event:
        item = {"id": item_id, "edition": edition, "categories": [], "regions": []}
        body = orjson.dumps({"type": "item.published", "item": item})
        return Event(envelope(stream_id, body))

    events = [published("2-0", "a"), published("3-0", "b", "ar"), published("4-0", "c")]
    for e in events:
        hub.dispatch_soon(e)
    late = Client(Filter(), 10, "sse")
    assert hub.snapshot(Filter()).data["items"] == []  # nothing applied before the flush
    hub.attach(late)
    await wait_for(lambda: bool(writes), 5, what="the flush (once the subscriber yields)")
    assert writes == [chunk(events[0].sse + events[1].sse + events[2].sse)]
    assert ws_t.written == events[0].ws_frame + events[1].ws_frame + events[2].ws_frame
    assert ar_t.written == events[1].sse_chunk  # its filter's one event, as is
    assert [f.id for f in await buffered.next_batch()] == ["2-0", "3-0", "4-0"]  # type: ignore[union-attr]
    assert [f.id for f in await late.next_batch()] == ["2-0", "3-0", "4-0"]  # type: ignore[union-attr]
    assert hub.last_id == "4-0" and hub.delivered == 3 * 4 + 1
    hub.dispatch_soon(published("4-0", "c"))  # already seen: dropped at the flush
    hub.dispatch(published("5-0", "d"))  # a direct dispatch flushes what waits first
    assert hub.last_id == "5-0" and len(writes) == 2

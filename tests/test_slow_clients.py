"""Slow clients hurt only themselves: bounded buffers, a named cut, others on time."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.helpers import sse, wait_for
from tests.support.slow import flood, tiny_socket
from tests.support.stack import running_stack
from ticker.config import Settings
from ticker.constants import CLOSE_SLOW_CLIENT


@pytest.mark.slow
async def test_stalled_clients_are_cut_and_others_get_everything(settings: Settings) -> None:
    """A WS and an SSE client that stop reading are cut (WS with 4000); a reader gets all."""
    async with running_stack(replace(settings, client_queue_max=8)) as stack:
        hub = stack.api.app.state.hub
        port = stack.api.port
        ws_sock = tiny_socket(port)
        sse_sock = tiny_socket(port)
        sse_sock.send(b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        async with (
            connect(f"ws://127.0.0.1:{port}/v1/ws", sock=ws_sock, max_queue=1) as stalled,
            sse(stack.base) as reader,
        ):
            await reader.next()
            await wait_for(lambda: hub.client_count == 3, what="three clients")
            assert all(c.direct is not None for c in hub.clients()), "caught-up clients go direct"
            await flood(stack, 150)
            await wait_for(
                lambda: [c.closed for c in hub.clients()].count(None) == 1,
                timeout=20,
                what="both stalled clients to be cut",
            )
            # Reading again, the stalled WS client finds the backlog, then close 4000.
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await asyncio.wait_for(stalled.recv(), 10)
            assert info.value.rcvd is not None and info.value.rcvd.code == CLOSE_SLOW_CLIENT
            got = [await reader.next(timeout=10) for _ in range(150)]
            assert [g.data["item"]["id"] for g in got] == [f"flood-{i}" for i in range(150)]
        sse_sock.close()

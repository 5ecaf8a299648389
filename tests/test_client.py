"""The Python client: reconnect, resume by last id, persisted cursor, reset, refusal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.helpers import wait_for
from tests.support.stack import Api, Stack, running_stack
from ticker.client.client import FileCursor, StreamEvent, StreamRefused, TickerClient
from ticker.config import Settings


class Collector:
    """Runs a client in the background and keeps what it yields."""

    def __init__(self, client: TickerClient) -> None:
        self.client = client
        self.events: list[StreamEvent] = []
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async for event in self.client.events():
            self.events.append(event)

    def items(self, kind: str = "item.published") -> list[str]:
        return [e.data["item"]["headline"] for e in self.events if e.type == kind]

    def __enter__(self) -> Collector:
        self.task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()


@contextlib.asynccontextmanager
async def collecting(client: TickerClient) -> AsyncIterator[Collector]:
    with Collector(client) as c:
        yield c
    with contextlib.suppress(asyncio.CancelledError):
        assert c.task is not None
        await c.task


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_client_reconnects_and_resumes_across_api_restart(
    stack: Stack, transport: str
) -> None:
    """An API restart cuts the client; it reconnects by itself, resumes from its last id,
    and sees every item published meanwhile exactly once, in order."""
    client = TickerClient(
        stack.base, editions=["en"], transport=transport, backoff_initial=0.05, backoff_max=0.5
    )  # type: ignore[arg-type]
    port = stack.api.port
    other = Api(stack.settings)  # posts go through a second API process meanwhile
    await other.start()
    original = stack.api
    try:
        async with collecting(client) as c:
            await wait_for(lambda: [e.type for e in c.events] == ["snapshot"], 10, what="snapshot")
            await stack.publish("Wildfire forces evacuations in Attica")
            await stack.publish("Miners trapped after collapse in Zonguldak")
            await wait_for(lambda: len(c.items()) == 2, 10, what="two items")
            await stack.api.stop()
            stack.http.base_url = other.base  # type: ignore[assignment]
            await stack.publish("Election results delayed in Lagos state")
            stack.api = Api(stack.settings, port)
            await stack.api.start()
            await stack.publish("Heatwave record broken in Seville")
            await wait_for(lambda: len(c.items()) == 4, 15, what="four items")
            assert c.items() == [
                "Wildfire forces evacuations in Attica",
                "Miners trapped after collapse in Zonguldak",
                "Election results delayed in Lagos state",
                "Heatwave record broken in Seville",
            ]
            assert [e.type for e in c.events].count("snapshot") == 1
            assert client.connections >= 2
    finally:
        if stack.api is not original:
            await stack.api.stop()
            stack.api = original  # already stopped; the fixture's teardown tolerates it
        await other.stop()


async def test_file_cursor_resumes_a_new_client_where_the_last_one_stopped(
    stack: Stack, tmp_path: Path
) -> None:
    """A client stopped while handling an event and started anew (a bridge restart) with
    the same cursor file gets exactly the events after the last one it handled."""
    path = tmp_path / "cursor.json"
    await stack.publish("Storm closes the harbour in Valparaiso")
    first = TickerClient(stack.base, cursor=FileCursor(path))
    seen: list[StreamEvent] = []
    async with asyncio.timeout(20):
        async for event in first.events():
            seen.append(event)
            if event.type == "snapshot":
                await stack.publish("Parliament passes the water bill")
                await stack.publish("Rail strike halts trains across Norway")
            elif event.data["item"]["headline"] == "Rail strike halts trains across Norway":
                break  # a crash while handling it: it was never acknowledged
    assert [e.type for e in seen] == ["snapshot", "item.published", "item.published"]
    assert FileCursor(path).load() == seen[1].id
    await stack.publish("Volcano erupts near Catania airport")
    second = TickerClient(stack.base, cursor=FileCursor(path))
    got: list[str] = []
    async with asyncio.timeout(20):
        async for event in second.events():
            got.append(event.data["item"]["headline"])
            if len(got) == 2:
                break
    assert got == ["Rail strike halts trains across Norway", "Volcano erupts near Catania airport"]


async def test_reset_when_the_cursor_is_past_retention(stack: Stack, tmp_path: Path) -> None:
    """A cursor older than what the stream retains gets a reset, then a fresh snapshot,
    then live events, and the cursor moves on."""
    first = await stack.publish("Ferry sinks off the coast of Lombok")
    await stack.publish("Central bank raises rates by half a point")
    await stack.redis.xtrim(stack.keys.events, maxlen=1, approximate=False)
    cursor = FileCursor(tmp_path / "c.json")
    cursor.save(first["event_id"])
    client = TickerClient(stack.base, cursor=cursor, transport="ws")
    async with collecting(client) as c:
        await wait_for(lambda: len(c.events) >= 2, 10, what="reset and snapshot")
        assert [e.type for e in c.events[:2]] == ["reset", "snapshot"]
        assert {i["headline"] for i in c.events[1].data["items"]} == {
            "Ferry sinks off the coast of Lombok",
            "Central bank raises rates by half a point",
        }
        await stack.publish("Live after the reset")
        await wait_for(lambda: c.items() == ["Live after the reset"], 10, what="live item")
    assert FileCursor(tmp_path / "c.json").load() == c.events[-1].id  # handled: saved


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_bad_filter_is_refused_not_retried(stack: Stack, transport: str) -> None:
    """A filter the server rejects raises StreamRefused instead of reconnecting forever."""
    client = TickerClient(stack.base, editions=["xx"], transport=transport)  # type: ignore[arg-type]
    with pytest.raises(StreamRefused):
        async for _ in client.events():
            pass


def test_file_cursor_saves_atomically_with_state(tmp_path: Path) -> None:
    """The cursor file holds the last id and the owner's state together, and a stray
    temporary file from a crash mid-save does not affect what is loaded."""
    path = tmp_path / "deep" / "cursor.json"
    cursor = FileCursor(path)
    assert cursor.load() is None
    cursor.state["pushed"] = {"a": 1}
    cursor.save("5-0")
    (path.parent / ".cursor.json.crashed").write_text('{"last_id": "9-0"')  # torn temp file
    again = FileCursor(path)
    assert again.load() == "5-0" and again.state == {"pushed": {"a": 1}}
    assert [p.name for p in path.parent.iterdir() if not p.name.startswith(".")] == ["cursor.json"]


async def test_heartbeats_move_an_idle_filtered_cursor(settings: Settings, tmp_path: Path) -> None:
    """A client whose filter matches nothing still moves its saved cursor with the SSE
    heartbeats' ids, so a quiet bridge does not fall out of the stream's retention."""
    async with running_stack(replace(settings, sse_ping_seconds=0.2)) as stack:
        cursor = FileCursor(tmp_path / "c.json")
        client = TickerClient(stack.base, editions=["ar"], cursor=cursor)
        async with collecting(client) as c:
            await wait_for(lambda: len(c.events) == 1, 10, what="the snapshot")
            last = (await stack.publish("Only for the English edition"))["event_id"]
            await wait_for(lambda: cursor.load() == last, 10, what="a heartbeat past the item")
            assert [e.type for e in c.events] == ["snapshot"]


async def test_a_crash_between_reset_and_snapshot_resets_again(
    stack: Stack, tmp_path: Path
) -> None:
    """The cursor does not move on a reset, only on its snapshot: a consumer that dies
    after the reset gets the reset and the snapshot again on its next start."""
    first = await stack.publish("Ferry sinks off the coast of Lombok")
    await stack.publish("Central bank raises rates by half a point")
    await stack.redis.xtrim(stack.keys.events, maxlen=1, approximate=False)
    path = tmp_path / "c.json"
    FileCursor(path).save(first["event_id"])
    for _ in range(2):
        got: list[str] = []
        async with asyncio.timeout(15):
            async for event in TickerClient(stack.base, cursor=FileCursor(path)).events():
                got.append(event.type)
                if event.type == "snapshot":
                    break  # dies before handling the snapshot
        assert got == ["reset", "snapshot"]
        assert FileCursor(path).load() == first["event_id"]

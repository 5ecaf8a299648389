"""The core flow end to end: intake -> worker -> atomic publish -> SSE and WebSocket."""

from __future__ import annotations

from tests.conftest import Stack
from tests.helpers import is_item, sse, ws


async def test_post_reaches_sse_and_ws(stack: Stack) -> None:
    """A posted item reaches an SSE client and a WebSocket client with the same envelope."""
    async with sse(stack.base) as s, ws(stack.base) as w:
        assert (await s.next()).type == "snapshot"
        assert (await w.next()).type == "snapshot"
        r = await stack.post({"headline": "Quake hits Lima", "edition": "en", "urgency": 1})
        assert r.status_code == 202
        item_id = r.json()["id"]
        got_sse = await s.until(is_item("item.published", item_id))
        got_ws = await w.until(is_item("item.published", item_id))
    assert got_sse.data == got_ws.data
    assert got_sse.data["item"]["headline"] == "Quake hits Lima"
    assert got_sse.id == got_ws.id
    ((stream_id, _),) = await stack.events()
    assert got_sse.id == stream_id.decode()

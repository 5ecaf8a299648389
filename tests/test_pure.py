"""Pure logic without sockets: filters, envelopes, SSE framing and parsing, the hub,
the disconnect table."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticker.client.sseparse import SSEParser
from ticker.disconnect import Disconnect, sse_last_words
from ticker.events import Event, envelope, parse_stream_id
from ticker.exceptions import ValidationError
from ticker.filters import Filter, Subject, stream_query
from ticker.stream.hub import Client, Hub, Ping
from ticker.stream.opening import final_bytes, final_frame


def item(item_id: str, **kw: object) -> dict[str, object]:
    return {"id": item_id, "edition": "en", "categories": [], "regions": [], "urgency": 5, **kw}


def event(stream_id: str, etype: str = "item.published", **kw: object) -> Event:
    body = orjson.dumps({"type": etype, "item": item(kw.pop("item_id", "i1"), **kw)})  # type: ignore[arg-type]
    return Event(envelope(stream_id, body))


def test_filter_parse_and_match() -> None:
    """Comma and repeated values are ORed; empty filters match all; urgency is a ceiling."""
    f = Filter.parse(
        {"category": ["politics,world"], "region": ["mena"], "max_urgency": ["3"]}, ["en"]
    )
    assert f.matches(Subject("en", frozenset({"world"}), frozenset({"mena"}), 2))
    assert not f.matches(Subject("en", frozenset({"sports"}), frozenset({"mena"}), 2))
    assert not f.matches(Subject("en", frozenset({"world"}), frozenset({"mena"}), 4))
    assert Filter().matches(Subject("ar", frozenset(), frozenset(), 9))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"edition": ["fr"]}, "edition"),
        ({"max_urgency": ["0"]}, "max_urgency"),
        ({"category": ["No Way"]}, "category"),
        ({"region": [",".join("abcdefghijklmnopqrstu")]}, "region"),
    ],
)
def test_filter_rejects_bad_values(params: dict[str, list[str]], field: str) -> None:
    """Bad filter values raise a 400 naming the parameter."""
    with pytest.raises(ValidationError) as info:
        Filter.parse(params, ["en"])
    assert info.value.field == field and info.value.status == 400


def test_envelope_splices_the_id_like_lua() -> None:
    """The envelope is the body with the stream id first, byte for byte."""
    assert envelope("1-2", b'{"type":"x","a":1}') == b'{"id":"1-2","type":"x","a":1}'
    assert parse_stream_id("1700000000000-5") == (1700000000000, 5)
    with pytest.raises(ValueError):
        parse_stream_id("1-2-3")


def test_event_encodes_once_per_transport() -> None:
    """The SSE frame and WS text are built once and shared by every client."""
    ev = event("5-0", headline="a\nb")
    assert ev.sse is ev.sse and ev.text is ev.text
    assert ev.sse.startswith(b"id: 5-0\nevent: item.published\ndata: {")
    assert ev.sse.count(b"\n") == 4  # no newline inside the data line


@given(st.text())
def test_any_text_survives_sse_framing(text: str) -> None:
    """Whatever a field holds, the SSE frame parses back to the same JSON."""
    ev = Event(
        envelope("1-0", orjson.dumps({"type": "item.published", "item": item("x", headline=text)}))
    )
    (msg,) = SSEParser().feed(ev.sse)
    assert orjson.loads(msg.data)["item"]["headline"] == text
    assert msg.id == "1-0" and msg.event == "item.published"


def test_sse_parser_handles_split_chunks_and_crlf() -> None:
    """Frames split anywhere, with CRLF or CR line ends, parse the same."""
    raw = b"retry: 10\r\n: c\r\nid: 1\r\nevent: e\r\ndata: a\r\ndata: b\r\n\r\nid: 2\rdata: z\r\r"
    p = SSEParser()
    msgs = [m for i in range(len(raw)) for m in p.feed(raw[i : i + 1])]
    assert [(m.id, m.event, m.data) for m in msgs] == [("1", "e", "a\nb"), ("2", "message", "z")]
    assert p.retry == 10


async def test_hub_groups_filters_and_mirrors_state() -> None:
    """Dispatch reaches matching groups only, skips old ids, and keeps the live mirror."""
    hub = Hub(client_limit=10)
    hub.load("1-0", [item("old")])
    en, ar = (
        Client(Filter(frozenset({"en"})), 10, "sse"),
        Client(Filter(frozenset({"ar"})), 10, "sse"),
    )
    hub.attach(en)
    hub.attach(ar)
    assert hub.dispatch(event("2-0", item_id="new"))
    assert not hub.dispatch(event("2-0", item_id="new"))  # a duplicate id is dropped
    assert not hub.dispatch(event("1-5", item_id="older"))
    assert [f.id for f in await en.next_batch()] == ["2-0"]  # type: ignore[union-attr]
    assert not ar.buffer
    assert [i["id"] for i in hub.snapshot(Filter()).data["items"]] == ["new", "old"]
    hub.dispatch(event("3-0", "item.retracted", item_id="old"))
    assert [i["id"] for i in hub.snapshot(Filter()).data["items"]] == ["new"]


async def test_slow_client_is_cut_and_others_are_not() -> None:
    """A client over its bound is cut with reason 'slow'; its neighbour keeps everything."""
    hub = Hub(client_limit=3)
    hub.load("0-0", [])
    cut: list[str] = []
    slow = Client(Filter(), 3, "ws", on_cut=lambda c: cut.append(c.closed or ""))
    fine = Client(Filter(), 100, "ws")
    hub.attach(slow)
    hub.attach(fine)
    for n in range(1, 6):
        hub.dispatch(event(f"{n}-0", item_id=f"i{n}"))
    assert cut == ["slow"] and slow.closed == "slow"
    assert await slow.next_batch() == []
    assert len(await fine.next_batch()) == 5


async def test_heartbeat_pings_and_cuts_stuck_writers() -> None:
    """Heartbeats queue one shared ping; a client stuck in a write too long is cut."""
    hub = Hub()
    hub.load("7-0", [])
    idle, stuck = Client(Filter(), 10, "sse"), Client(Filter(), 10, "sse")
    stuck.busy_since = 1.0
    hub.attach(idle)
    hub.attach(stuck)
    hub.heartbeat(now=100.0, send_timeout=30)
    (ping,) = await idle.next_batch()
    assert isinstance(ping, Ping) and ping.sse == b": ping\nid: 7-0\n\n"
    assert stuck.closed == "send_timeout"


async def test_resume_point_skips_already_sent_events() -> None:
    """Events at or before a resumed client's position are not sent again."""
    c = Client(Filter(), 10, "sse")
    c.after = (2, 0)
    for n in (1, 2, 3):
        c.push(event(f"{n}-0"))
    assert [f.id for f in await asyncio.wait_for(c.next_batch(), 1)] == ["3-0"]  # type: ignore[union-attr]
    assert c.after is None


def test_hub_replays_recent_events_from_memory_back_to_its_floor() -> None:
    """The hub keeps its latest events: a resume after any of them is served from
    memory (its filter's events only); one from before what memory holds is not."""
    hub = Hub(recent=3)
    hub.load("1-0", [])
    assert hub.replay(Filter(), (1, 0)) == []
    assert hub.replay(Filter(), (0, 5)) is None  # before the load point
    for n, edition in ((2, "en"), (3, "ar"), (4, "en"), (5, "en")):
        hub.dispatch(event(f"{n}-0", item_id=f"i{n}", edition=edition))
    en = Filter(frozenset({"en"}))
    assert [e.id for e in hub.replay(en, (3, 0)) or []] == ["4-0", "5-0"]
    assert [e.id for e in hub.replay(Filter(), (2, 0)) or []] == ["3-0", "4-0", "5-0"]
    assert hub.replay(Filter(), (1, 0)) is None  # 2-0 fell out of memory
    hub.load("9-0", [])
    assert hub.replay(Filter(), (5, 0)) is None and hub.replay(Filter(), (9, 0)) == []
    assert Hub(recent=0).replay(Filter(), (0, 0)) is None


def test_stream_query_parses_as_query_params_and_shares_filters() -> None:
    """The same query gives the same Filter object; values are decoded as Starlette
    would (the last last_event_id wins); a bad query raises each time."""
    eds = ("en", "ar")
    f, last = stream_query(b"edition=en&category=world,politics&last_event_id=1-0", eds)
    assert f == Filter(frozenset({"en"}), frozenset({"world", "politics"}))
    assert last == "1-0"
    shared, _ = stream_query(b"edition=en&category=world,politics", eds)
    assert shared == f and stream_query(b"edition=en&category=world,politics", eds)[0] is shared
    assert stream_query(b"last%5Fevent%5Fid=1-0&last_event_id=2-5", eds)[1] == "2-5"
    # One client's resume point, or a long query, is parsed but not kept.
    resume = b"edition=en&last_event_id=3-0"
    assert stream_query(resume, eds)[0] is not stream_query(resume, eds)[0]
    long = b"edition=en&x=" + b"y" * 1000
    assert stream_query(long, eds)[0] is not stream_query(long, eds)[0]
    assert stream_query(b"region=mena%2Cgulf", eds)[0].regions == {"mena", "gulf"}
    assert stream_query(b"", eds) == (Filter(), None)
    for _ in range(2):
        with pytest.raises(ValidationError) as bad:
            stream_query(b"edition=fr", eds)
        assert bad.value.field == "edition"


def test_the_disconnect_table_keeps_what_clients_and_dashboards_read() -> None:
    """Each way a stream ends keeps its close code and text, its SSE last words and its
    metrics label (ticker_clients_dropped), as clients and dashboards read them."""

    def close(code: int, text: str) -> bytes:
        body = code.to_bytes(2, "big") + text.encode()
        return bytes((0x88, len(body))) + body

    assert final_frame(Disconnect.SLOW) == close(4000, "slow")
    assert final_frame(Disconnect.SEND_TIMEOUT) == close(4000, "send_timeout")
    assert final_frame(Disconnect.SHUTDOWN) == close(1012, "shutdown")
    assert final_frame(Disconnect.FLOOD) == close(1008, "flood")
    assert final_frame(Disconnect.GONE) == b""
    assert Disconnect.PING_TIMEOUT.ws_close() == close(1011, "keepalive ping timeout")
    assert Disconnect.TOO_BIG.ws_close() == close(1009, "frame too big")
    assert Disconnect.INVALID_DATA.ws_close() == close(1007, "invalid UTF-8")
    assert Disconnect.BAD_CLOSE.ws_close() == close(1002, "bad close frame")
    assert (Disconnect.BAD_REQUEST.code, Disconnect.TRY_AGAIN.code) == (4400, 1013)
    assert Disconnect.ORIGIN_REFUSED.ws_close_message() == {
        "type": "websocket.close",
        "code": 1008,
        "reason": "origin not allowed",
    }
    assert Disconnect.TOO_MANY.ws_close_message()["reason"] == "too many connections"

    words = b": shutdown; reconnect with Last-Event-ID\nretry: 1500\n\n"
    assert sse_last_words(Disconnect.SHUTDOWN, 1500) == words
    assert (
        final_bytes(1500, Disconnect.SHUTDOWN) == b"%x\r\n" % len(words) + words + b"\r\n0\r\n\r\n"
    )
    assert final_bytes(1500, Disconnect.SLOW) == final_bytes(1500, Disconnect.SEND_TIMEOUT) == b""

    labels = {r.value: r.rule.label for r in Disconnect if r.rule.label is not None}
    assert labels == {r: r for r in ("slow", "send_timeout", "shutdown", "flood")}
    assert [r for r in Disconnect if r.rule.reconnect] == [
        Disconnect.GONE,
        Disconnect.SLOW,
        Disconnect.SEND_TIMEOUT,
        Disconnect.SHUTDOWN,
        Disconnect.PING_TIMEOUT,
        Disconnect.TRY_AGAIN,
    ]

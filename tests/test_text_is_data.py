"""Text is data: any headline is refused with a clear 4xx, or reaches SSE and WebSocket
clients exactly in its display form, without ever breaking either transport's framing.

One stack serves every Hypothesis example (it runs on a background loop); the streams stay
open throughout, and each accepted item must be the very next event on both of them, so a
refused headline that leaked an event, or a headline that split an SSE frame, fails.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.support.background import BackgroundStack
from tests.support.helpers import Received, SSEStream, WSStream, sse, ws
from tests.support.stack import Stack, auth, fresh_settings
from ticker.embedded_redis import RedisProcess

# The contract (docs/api.md, "Text is data"): C0/C1 controls other than tab, CR and LF are refused,
# as is a headline with nothing visible; otherwise readers get the NFC form with every
# whitespace run (newlines, CR, tabs, U+2028/2029) folded to one space. Bidi controls and
# astral characters are text like any other and pass through untouched.
FORBIDDEN = {chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)]} | {
    chr(c) for c in range(0x7F, 0xA0)
}
TRICKY = [
    "\n",
    "\r",
    "\r\n",
    "\t",
    "\x00",
    "\x1b",
    "\x85",
    "\x7f",
    "\u2028",
    "\u2029",
    "\u202e",  # right-to-left override
    "\u202d",
    "\u2066",  # left-to-right isolate .. pop directional isolate
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200b",
    "\u200f",
    "\ufeff",
    "\ufffe",
    "data: ",
    "id: 1-0",
    "event: x",
    ": ",
    "<script>",
    '"',
    "\\",
    "عاجل",
    "e\u0301",  # decomposed: NFC composes it
    "\U0001f4f0",  # astral: newspaper emoji
    "\U0001d573",
    "\U0010fffd",
]
FRAGMENTS = st.one_of(
    st.characters(codec="utf-8"),  # every scalar value (no surrogates: see below)
    st.characters(min_codepoint=0x10000, codec="utf-8"),
    st.sampled_from(TRICKY),
)
# Mostly short headlines, some past the 300-character bound.
HEADLINES = st.lists(FRAGMENTS, max_size=60).map("".join) | st.text(min_size=290, max_size=310)


def invisible(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) == "Cf"


def expected_display(headline: str) -> str | None:
    """What readers must get for ``headline``, or None if the intake must refuse it."""
    if not 1 <= len(headline) <= 300 or FORBIDDEN & set(headline):
        return None
    if all(invisible(c) for c in headline):
        return None
    return " ".join(unicodedata.normalize("NFC", headline).split())


@dataclass
class Live:
    runner: BackgroundStack
    stack: Stack
    sse: SSEStream
    ws: WSStream
    accepted: int = 0
    last_item: str | None = None

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return self.runner.run(coro, timeout)


@pytest.fixture(scope="module")
def live(redis_server: RedisProcess) -> Iterator[Live]:
    cfg = fresh_settings(redis_server.url, sse_ping_seconds=3600, rate_limit_auth_failures="")
    runner = BackgroundStack(cfg)
    with runner as stack:
        clients = contextlib.AsyncExitStack()

        async def open_streams() -> tuple[SSEStream, WSStream]:
            s = await clients.enter_async_context(sse(stack.base))
            w = await clients.enter_async_context(ws(stack.base))
            assert (await s.next(10)).type == "snapshot"
            assert (await w.next(10)).type == "snapshot"
            return s, w

        s, w = runner.run(open_streams())
        try:
            yield Live(runner, stack, s, w)
        finally:
            runner.run(clients.aclose())


async def _send_raw(stack: Stack, method: str, path: str, body: bytes) -> Any:
    headers = {**auth("admin"), "Content-Type": "application/json"}
    return await stack.http.request(method, path, content=body, headers=headers)


async def _post_raw(stack: Stack, body: bytes) -> Any:
    return await _send_raw(stack, "POST", "/v1/items", body)


async def _next_item(stream: SSEStream | WSStream) -> Received:
    return await stream.next(15)


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(headline=HEADLINES, correction=st.booleans())
@pytest.mark.timeout(600)
def test_any_headline_is_refused_or_arrives_exactly(
    live: Live, headline: str, correction: bool
) -> None:
    """Each headline, new or as a correction, gets a 422 naming `headline` and no event, or
    arrives exactly as its display form as the next event on both SSE and WebSocket."""
    want = expected_display(headline)
    correction = correction and live.last_item is not None
    if correction:
        path, method, kind = f"/v1/items/{live.last_item}", "PATCH", "item.updated"
        body = orjson.dumps({"headline": headline})
    else:
        # `force` (admin) skips duplicate detection, which is not under test here.
        path, method, kind = "/v1/items", "POST", "item.published"
        body = orjson.dumps({"headline": headline, "edition": "en", "force": True})
    r = live.run(_send_raw(live.stack, method, path, body))
    event("refused" if want is None else f"accepted {method}")
    if want is None:
        assert r.status_code == 422, (r.status_code, r.text)
        assert r.json()["error"]["field"] == "headline"
        return
    assert r.status_code == 202, r.text
    item_id = r.json()["id"]
    live.last_item = item_id
    live.accepted += 1
    for stream in (live.sse, live.ws):
        got = live.run(_next_item(stream))
        assert got.type == kind
        assert got.data["item"]["id"] == item_id
        assert got.data["item"]["headline"].encode() == want.encode()
    view = live.run(live.stack.http.get(f"/v1/items/{item_id}", headers=auth())).json()
    assert view["item"]["headline"] == want
    assert len(live.run(live.stack.events())) == live.accepted


@pytest.mark.parametrize(
    "raw",
    [
        rb'"\ud800 lone high surrogate"',
        rb'"lone low \udc00"',
        rb'"reversed \udc00\ud800"',
        b'"utf-8 encoded surrogate \xed\xa0\x80"',
        b'"overlong \xc0\xaf"',
        b'"truncated \xe2\x82"',
    ],
)
def test_surrogates_and_bad_utf8_are_refused(live: Live, raw: bytes) -> None:
    """A headline that is not Unicode text (lone surrogates, invalid UTF-8) gets a 400 naming
    the body, and no event."""
    before = len(live.run(live.stack.events()))
    r = live.run(_post_raw(live.stack, b'{"edition": "en", "headline": ' + raw + b"}"))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == {
        "code": "invalid_json",
        "field": "body",
        "message": r.json()["error"]["message"],
    }
    assert len(live.run(live.stack.events())) == before


def test_escaped_astral_pair_arrives_as_one_character(live: Live) -> None:
    """A JSON surrogate pair escape is one astral character, and arrives as that character."""
    r = live.run(_post_raw(live.stack, rb'{"edition": "en", "headline": "\ud83d\udcf0 News"}'))
    assert r.status_code == 202, r.text
    live.accepted += 1
    for stream in (live.sse, live.ws):
        got = live.run(_next_item(stream))
        assert got.data["item"]["headline"] == "\U0001f4f0 News"

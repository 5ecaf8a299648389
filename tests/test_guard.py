"""The fast paths' guard (ticker.serve.guard): what they lean on in uvicorn is
checked at startup, an error inside them switches them off, and TICKER_FAST_PATHS=0
does it by hand; in every case streams still open and get the news, down the
plain ASGI path."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from tests.support.helpers import is_item, sse, wait_for, ws
from tests.support.stack import Stack, running_stack
from ticker.config import Settings
from ticker.serve import fastlane, guard, parking
from ticker.serve.parking import Parked


def _parked(stack: Stack) -> list[Parked]:
    hub = stack.api.app.state.hub
    return [
        p
        for c in hub.clients()
        if c.direct is not None and isinstance(p := c.direct.get_protocol(), Parked)
    ]


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "ticker.server" and r.levelno == level]


async def _streams_get_the_news(
    stack: Stack, headline: str, headers: dict[str, str] | None = None
) -> None:
    """An SSE and a WebSocket client get the snapshot, then a new item."""
    async with sse(stack.base, headers=headers) as s, ws(stack.base) as w:
        assert (await s.next()).type == "snapshot"
        assert (await w.next()).type == "snapshot"
        item = await stack.publish(headline)
        await s.until(is_item("item.published", item["id"]))
        await w.until(is_item("item.published", item["id"]))


def test_check_names_what_this_uvicorn_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed uvicorn and websockets pass; a removed method and a version
    outside the tested range are both named."""
    assert guard.check() == []
    monkeypatch.delattr(WebSocketsSansIOProtocol, "stop_keepalive")
    monkeypatch.setitem(guard.TESTED, "uvicorn", ((0, 1), (0, 2)))
    gaps = guard.check()
    assert any("uvicorn" in g and "not the tested 0.1" in g for g in gaps), gaps
    assert "WebSocketsSansIOProtocol has no stop_keepalive" in gaps


async def test_a_missing_attribute_at_startup_turns_the_fast_paths_off(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An attribute the fast paths need and uvicorn lacks: one warning naming it, no
    lane and nothing parked, and streams still open and get events."""
    renamed = ("uvicorn.server", "ServerState", ("renamed_attribute",))
    monkeypatch.setattr(guard, "NEEDS", (*guard.NEEDS, renamed))
    caplog.set_level(logging.INFO, "ticker.server")
    async with running_stack(settings) as stack:
        warnings = _records(caplog, logging.WARNING)
        assert len(warnings) == 1
        assert "ServerState has no renamed_attribute" in warnings[0].getMessage()
        assert not hasattr(stack.api.server.config.http_protocol_class, "lane")
        await _streams_get_the_news(stack, "Fast paths off, a storm nears Manila")
        assert not _parked(stack)
    assert len(_records(caplog, logging.WARNING)) == 1


async def test_fast_paths_off_by_setting(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """TICKER_FAST_PATHS=0: no lane, nothing parked, no warning, and streams work."""
    caplog.set_level(logging.INFO, "ticker.server")
    async with running_stack(replace(settings, fast_paths=False)) as stack:
        assert not hasattr(stack.api.server.config.http_protocol_class, "lane")
        await _streams_get_the_news(stack, "Fast paths off, a storm nears Manila")
        assert not _parked(stack)
    assert not _records(caplog, logging.WARNING)
    assert Settings.from_env({"TICKER_FAST_PATHS": "0"}).fast_paths is False


async def test_an_error_inside_the_lane_sends_the_request_down_the_asgi_path(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An attribute uvicorn renamed, met inside the lane: that request and every later
    one get their stream from the ASGI path, and one error is logged."""

    def renamed(self: fastlane.StreamLane, p: object, path: bytes, kind: str) -> None:
        raise AttributeError("'HttpProtocol' object has no attribute 'cycle'")

    monkeypatch.setattr(fastlane.StreamLane, "_admit", renamed)
    caplog.set_level(logging.INFO, "ticker.server")
    async with running_stack(settings) as stack:
        lane = stack.api.server.config.http_protocol_class.lane
        await _streams_get_the_news(stack, "Lane fails, a quake strikes Chile")
        await _streams_get_the_news(stack, "Lane stays off, floods hit Dhaka")
        assert not lane.enabled
        assert not _parked(stack)
    errors = _records(caplog, logging.ERROR)
    assert len(errors) == 1
    assert "the fast lane raised" in errors[0].getMessage()
    assert errors[0].exc_info is not None


async def test_an_error_in_a_parking_step_keeps_the_stream_on_the_asgi_path(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An attribute uvicorn renamed, met while parking a stream the ASGI path opened:
    the stream stays with its ASGI call and gets events, the fast paths switch off
    (the lane too), and one error is logged."""

    def renamed(cycle: object, protocol: object) -> bool:
        raise AttributeError("'RequestResponseCycle' object has no attribute 'flow'")

    monkeypatch.setattr(parking, "_hand_over_http", renamed)
    caplog.set_level(logging.INFO, "ticker.server")
    async with running_stack(settings) as stack:
        lane = stack.api.server.config.http_protocol_class.lane
        # Content-Length: 0 makes the lane decline: the ASGI endpoint opens and parks.
        await _streams_get_the_news(stack, "Parking fails, rates rise", {"Content-Length": "0"})
        await wait_for(lambda: not lane.fast.on, 5, what="the fast paths to switch off")
        await _streams_get_the_news(stack, "Parking stays off, a bridge collapses")
        assert not _parked(stack)
    errors = _records(caplog, logging.ERROR)
    assert len(errors) == 1
    assert "parking raised" in errors[0].getMessage()

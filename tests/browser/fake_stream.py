"""A scripted stand-in for GET /v1/stream, so the widget's own behaviour is tested without Redis.

It keeps an event log and the live items like the real service: new connections get a snapshot,
resuming ones (Last-Event-ID header or last_event_id param) get the events after their id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ticker import pages


@dataclass
class StreamRequest:
    query: dict[str, str]
    last_event_id: str | None


@dataclass
class FakeStream:
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[int, str | None, bytes]] = field(default_factory=list)
    requests: list[StreamRequest] = field(default_factory=list)
    # Edition -> how many more stream requests for it get a 503.
    refuse: dict[str, int] = field(default_factory=dict)
    clients: list[tuple[str | None, asyncio.Queue[bytes | None]]] = field(default_factory=list)
    seq: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @staticmethod
    def frame(event_id: str, envelope: dict[str, Any]) -> bytes:
        data = orjson.dumps(envelope)
        return b"id: %s\nevent: %s\ndata: %s\n\n" % (
            event_id.encode(),
            envelope["type"].encode(),
            data,
        )

    def send(self, type_: str, **payload: Any) -> str:
        """Append an event to the log, apply it to the live items and push it to every client."""
        self.seq += 1
        event_id = f"{self.seq}-0"
        envelope = {"id": event_id, "type": type_, **payload}
        if type_ in ("item.published", "item.updated"):
            self.items[payload["item"]["id"]] = payload["item"]
        elif type_ in ("item.retracted", "item.expired"):
            self.items.pop(payload["item"]["id"], None)
        frame = self.frame(event_id, envelope)
        edition = payload["item"].get("edition") if "item" in payload else None
        self.log.append((self.seq, edition, frame))
        for wanted, queue in self.clients:
            if _matches(wanted, edition):
                queue.put_nowait(frame)
        return event_id

    def drop_clients(self) -> None:
        """Close every open stream, as a server restart would."""
        for _, queue in self.clients:
            queue.put_nowait(None)

    def _snapshot(self, wanted: str | None) -> bytes:
        items = [i for i in self.items.values() if _matches(wanted, i["edition"])]
        items.sort(key=lambda i: i["published_at"], reverse=True)
        event_id = f"{self.seq}-0"
        return self.frame(event_id, {"id": event_id, "type": "snapshot", "items": items})

    async def endpoint(self, request: Request) -> Response:
        last_id = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        self.requests.append(StreamRequest(dict(request.query_params), last_id))
        wanted = request.query_params.get("edition")
        if self.refuse.get(wanted or "", 0) > 0:
            self.refuse[wanted or ""] -= 1
            return Response(status_code=503)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        if last_id:
            after = int(last_id.split("-")[0])
            for seq, edition, frame in self.log:
                if seq > after and _matches(wanted, edition):
                    queue.put_nowait(frame)
        else:
            queue.put_nowait(self._snapshot(wanted))
        client = (wanted, queue)
        self.clients.append(client)
        async with self.changed:
            self.changed.notify_all()

        async def body() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 300\n\n"
                while (frame := await queue.get()) is not None:
                    yield frame
            finally:
                self.clients.remove(client)

        return StreamingResponse(
            body(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    async def wait_clients(self, n: int) -> None:
        """Wait until n streams are open."""
        async with asyncio.timeout(5), self.changed:
            await self.changed.wait_for(lambda: len(self.clients) >= n)


def _matches(wanted: str | None, edition: str | None) -> bool:
    # Only the edition filter: enough to keep the demo page's three tickers apart.
    return wanted is None or edition is None or edition in wanted.split(",")


def stamp(offset_seconds: float = 0) -> str:
    """An ISO 8601 UTC time `offset_seconds` from now, as the service writes them."""
    moment = datetime.now(UTC) + timedelta(seconds=offset_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_item(item_id: str, headline: str, **fields: Any) -> dict[str, Any]:
    """A public item as the service would send it."""
    published = fields.pop("published_at", None) or stamp()
    return {
        "id": item_id,
        "version": 1,
        "headline": headline,
        "edition": "en",
        "url": None,
        "categories": ["world"],
        "regions": ["mena"],
        "urgency": 5,
        "source": None,
        "byline": None,
        "created_at": published,
        "published_at": published,
        "updated_at": published,
        **fields,
    }


@contextlib.asynccontextmanager
async def serve_app(
    app: Starlette, on_exit: Callable[[], None] | None = None
) -> AsyncIterator[int]:
    """Serve an ASGI app with uvicorn on a free loopback port in this loop; yield the port."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", ws="none", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to await)
            await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        if on_exit is not None:
            on_exit()
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def serve_fake_stream(fake: FakeStream) -> AsyncIterator[str]:
    """Serve the real pages plus the fake stream on a free port; yield the base URL."""
    app = Starlette(routes=[*pages.routes, Route("/v1/stream", fake.endpoint)])
    async with serve_app(app, fake.drop_clients) as port:
        yield f"http://127.0.0.1:{port}"

"""A streaming test client that survives drops: it reconnects (to the next API
in its list) with its last event id, as a browser or a push bridge would."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from tests.support.helpers import Received, sse, ws
from tests.support.stack import auth

__all__ = ["Follower", "post_item"]

# What a dropped or refused connection looks like to the clients.
DROPS = (EOFError, ConnectionClosed, InvalidStatus, InvalidURI, httpx.HTTPError, OSError)


class Follower:
    """Reads every event over ``transport`` ("sse" or "ws") from ``bases[0]``; after
    a drop, reconnects to the next base with ``Last-Event-ID`` / ``last_event_id``."""

    def __init__(self, transport: str, bases: list[str], last_id: str | None = None) -> None:
        self.transport = transport
        self.bases = bases
        self.last_id = last_id
        self.events: list[Received] = []
        self.reconnects = 0  # sessions after the first
        self.drops = 0
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Follower {self.transport} {self.bases} got {len(self.items)} items>"

    @property
    def items(self) -> list[Received]:
        return [e for e in self.events if e.type.startswith("item.")]

    @property
    def connected(self) -> bool:
        """Has had its first event (the snapshot) on this connection."""
        return bool(self.events)

    def start(self) -> Follower:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        index = 0
        first = True
        while True:
            if not first:
                self.reconnects += 1
            first = False
            try:
                await self._session(self.bases[index % len(self.bases)])
            except DROPS:
                self.drops += 1
                index += 1
                await asyncio.sleep(0.1)  # client backoff before reconnecting

    async def _session(self, base: str) -> None:
        if self.transport == "sse":
            headers = {"Last-Event-ID": self.last_id} if self.last_id else None
            async with sse(base, headers=headers) as stream:
                while True:
                    self._take(await stream.next(timeout=3600))
        else:
            params = {"last_event_id": self.last_id} if self.last_id else None
            async with ws(base, params) as stream:
                while True:
                    self._take(await stream.next(timeout=3600))

    def _take(self, event: Received) -> None:
        self.events.append(event)
        if event.id:
            self.last_id = event.id


async def post_item(
    client: httpx.AsyncClient, base: str, headline: str, attempts_for: float = 30.0, **fields: Any
) -> str:
    """POST an item, retrying 503s and drops with the same Idempotency-Key (so a
    retry never makes a second item); returns the item id once accepted (202)."""
    body = {"headline": headline, "edition": "en", **fields}
    headers = {**auth(), "Idempotency-Key": uuid.uuid4().hex}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + attempts_for
    while True:
        try:
            r = await client.post(base + "/v1/items", json=body, headers=headers)
            if r.status_code == 202:
                return str(r.json()["id"])
            assert r.status_code == 503, r.text
        except httpx.TransportError:
            pass
        if loop.time() > deadline:
            raise AssertionError(f"{headline!r} was never accepted")
        await asyncio.sleep(0.2)

"""The chaos run's load: a publisher through the intake and SSE/WebSocket clients
that reconnect and resume, each recording every event id it sees (scripts/chaos.py).

Ids are packed as ``ms * 10_000 + seq`` into arrays, with the time each came,
so a few hundred clients over twenty minutes stay a few tens of MiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from array import array
from dataclasses import dataclass, field

import httpx
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ticker.client.sseparse import SSEParser

__all__ = ["Client", "Publisher", "pack", "run_client", "shared_http"]


def pack(stream_id: str) -> int:
    """A stream id (or an event id, ``ms-seq.epoch``) as one sortable integer."""
    ms, _, seq = stream_id.split(".", 1)[0].partition("-")
    return int(ms) * 10_000 + int(seq or 0)


@dataclass
class Client:
    """What one client saw, across all its connections."""

    name: str
    transport: str
    ids: array = field(default_factory=lambda: array("q"))  # item events, in arrival order
    times: array = field(default_factory=lambda: array("d"))  # wall time each arrived
    baseline: int | None = None  # the first snapshot's position: expect everything after
    last: str | None = None  # resume from here
    connects: int = 0
    resets: int = 0  # reset events, and resumes refused (then a fresh snapshot)
    errors: int = 0
    online: bool = False

    def seen(self, event: dict[str, object]) -> None:
        eid = str(event["id"])
        kind = event["type"]
        if kind == "snapshot":
            if self.baseline is None:
                self.baseline = pack(eid)
        elif kind == "reset":
            self.resets += 1
        else:
            self.ids.append(pack(eid))
            self.times.append(time.time())
        self.last = eid


async def _sse_once(client: Client, http: httpx.AsyncClient, base: str) -> None:
    headers = {"Last-Event-ID": client.last} if client.last else {}
    parser = SSEParser()
    async with http.stream("GET", base + "/v1/stream", headers=headers) as r:
        if r.status_code in (400, 422):  # resume id refused: start again from a snapshot
            client.resets += 1
            client.last = None
            return
        if r.status_code != 200:
            client.errors += 1
            return
        client.connects += 1
        client.online = True
        try:
            async for chunk in r.aiter_raw():
                for m in parser.feed(chunk):
                    client.seen(orjson.loads(m.data))
        finally:
            client.online = False


async def _ws_once(client: Client, base: str) -> None:
    url = base.replace("http://", "ws://") + "/v1/ws"
    if client.last:
        url += f"?last_event_id={client.last}"
    try:
        async with connect(url, open_timeout=10, max_queue=None) as conn:
            client.connects += 1
            client.online = True
            try:
                async for text in conn:
                    client.seen(orjson.loads(text))
            finally:
                client.online = False
    except InvalidStatus as exc:
        if exc.response.status_code in (400, 422):
            client.resets += 1
            client.last = None
        else:
            client.errors += 1
    except ConnectionClosed as exc:
        if exc.rcvd is not None and exc.rcvd.code == 4400:  # bad resume id: a fresh snapshot
            client.resets += 1
            client.last = None


def shared_http() -> httpx.AsyncClient:
    """One HTTP client for every SSE client: each of its own would load a TLS
    context (about half a second of CPU on a busy machine) for nothing."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(10, read=20),  # pings every 5 s: a silent 20 s is a dead peer
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
    )


async def run_client(
    client: Client, base: str, stop: asyncio.Event, http: httpx.AsyncClient
) -> None:
    """Stay connected until ``stop``: reconnect and resume after every cut."""
    pause = 0.1
    while not stop.is_set():
        before = client.connects
        with contextlib.suppress(Exception):
            try:
                if client.transport == "sse":
                    await _sse_once(client, http, base)
                else:
                    await _ws_once(client, base)
            except Exception:
                client.errors += 1
                raise
        # Back off only while connecting fails; a cut after a good connection
        # comes straight back (as EventSource's retry would, with jitter).
        pause = 0.1 if client.connects > before else min(pause * 2, 2.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), random.uniform(pause / 2, pause))


@dataclass
class Publisher:
    """Posts an item every ``every`` seconds through the intake; retries a refused
    post (503, 429, a cut connection) with the same Idempotency-Key until 202."""

    base: str
    key: str
    every: float
    accepted: dict[str, float] = field(default_factory=dict)  # item id -> when 202 came
    given_up: int = 0
    refused: list[str] = field(default_factory=list)  # 4xx answers: a bug in the run
    retries: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        auth = {"Authorization": f"Bearer {self.key}"}
        async with httpx.AsyncClient(base_url=self.base, timeout=5, headers=auth) as http:
            n = 0
            while not stop.is_set():
                n += 1
                words = " ".join(secrets.token_hex(3) for _ in range(3))
                body = {"headline": f"Chaos item {n}: {words}", "edition": "en"}
                await self._post(http, body, secrets.token_hex(12), stop)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.every)

    async def _post(
        self, http: httpx.AsyncClient, body: dict[str, str], idem: str, stop: asyncio.Event
    ) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                r = await http.post("/v1/items", json=body, headers={"Idempotency-Key": idem})
                if r.status_code == 202:
                    self.accepted[r.json()["id"]] = time.time()
                    return
                if r.status_code < 500 and r.status_code != 429:
                    self.refused.append(f"{r.status_code} {r.text[:200]}")
                    return
            self.retries += 1
            await asyncio.sleep(0.25)
        self.given_up += 1

"""Fixtures: a private Redis per session, and the whole service per test.

Redis is real (a redis-server of our own on a free port, flushed per test);
the API is served by uvicorn on a real socket and the arq worker runs for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
import redis as redis_sync
from redis.asyncio import Redis

from tests.helpers import wait_for
from ticker.app import create_app
from ticker.config import Settings
from ticker.constants import Keys
from ticker.embedded_redis import RedisProcess
from ticker.server import TickerServer, bind, server_config
from workers.settings import run_worker

KEYS = {
    "editor": "k-editor-0123456789",
    "en-desk": "k-endesk-0123456789",
    "corrector": "k-corrector-0123456",
    "admin": "k-admin-012345678901",
}
API_KEYS = json.dumps(
    [
        {"name": "editor", "key": KEYS["editor"], "scopes": ["publish", "correct", "retract"]},
        {"name": "en-desk", "key": KEYS["en-desk"], "scopes": ["publish"], "editions": ["en"]},
        {"name": "corrector", "key": KEYS["corrector"], "scopes": ["correct"]},
        {"name": "admin", "key": KEYS["admin"], "scopes": ["admin"]},
    ]
)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.close()


@pytest.fixture
def settings(redis_server: RedisProcess) -> Settings:
    with redis_sync.Redis.from_url(redis_server.url) as r:
        r.flushall()
    # Rate limits and connection caps off: tests post and connect far faster than editors;
    # tests/test_security.py turns them on.
    return Settings(
        redis_url=redis_server.url,
        api_keys=API_KEYS,
        worker_poll_delay=0.01,
        rate_limit_per_key="",
        rate_limit_per_ip="",
        rate_limit_auth_failures="",
        max_connections_per_ip=0,
    )


def auth(name: str = "editor") -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


class Api:
    """A running API process (in this event loop, on a real socket)."""

    def __init__(self, settings: Settings, port: int = 0) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.sock = bind("127.0.0.1", port)
        self.port = self.sock.getsockname()[1]
        self.server = TickerServer(server_config(self.app, settings, log_level="warning"), self.app)
        self.task: asyncio.Task[None] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        await wait_for(lambda: self.server.started, 10, what="uvicorn to start")
        await wait_for(lambda: self.app.state.hub.ready.is_set(), 10, what="the hub to load")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.wait_for(self.task, 15)


class WorkerRunner:
    """The arq worker, as `ticker worker` runs it, in this event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.task: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(run_worker(self.settings, handle_signals=False))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


@dataclass
class Stack:
    """The service as a client sees it, plus handles on its parts."""

    settings: Settings
    api: Api
    worker: WorkerRunner
    http: httpx.AsyncClient
    redis: Redis

    @property
    def base(self) -> str:
        return self.api.base

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.redis_prefix)

    async def post(
        self, body: dict[str, Any], key: str = "editor", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.post(
            "/v1/items", json=body, headers={**auth(key), **(headers or {})}
        )

    async def publish(self, headline: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        """Post an item and wait until the worker has published it."""
        body = {"headline": headline, "edition": "en", **fields}
        r = await self.post(body)
        assert r.status_code == 202, r.text
        return await self.wait_status(r.json()["id"], "published", timeout)

    async def wait_status(self, item_id: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
        view: dict[str, Any] = {}

        async def check() -> bool:
            nonlocal view
            view = (await self.http.get(f"/v1/items/{item_id}", headers=auth())).json()
            return view.get("status") == status

        await wait_for(check, timeout, what=f"item {item_id} to be {status}")
        return view

    async def events(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        return await self.redis.xrange(self.keys.events)  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def running_stack(settings: Settings, port: int = 0) -> AsyncIterator[Stack]:
    api = Api(settings, port)
    worker = WorkerRunner(settings)
    await api.start()
    await worker.start()
    redis = Redis.from_url(settings.redis_url)
    http = httpx.AsyncClient(base_url=api.base, timeout=10)
    try:
        yield Stack(settings, api, worker, http, redis)
    finally:
        await http.aclose()
        await redis.aclose()
        await worker.stop()
        await api.stop()


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    async with running_stack(settings) as s:
        yield s


__all__ = ["KEYS", "Api", "Stack", "auth", "replace", "running_stack"]

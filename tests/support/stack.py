"""The whole service in this event loop, as a client sees it: the API on a real
socket (uvicorn), the arq worker, an HTTP client and Redis; and the test API keys."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import redis as redis_sync
from redis.asyncio import Redis

from tests.support.helpers import wait_for
from ticker.app import create_app
from ticker.config import Settings
from ticker.constants import Keys
from ticker.serve.server import TickerServer, bind, server_config
from workers.worker import run_worker

__all__ = [
    "API_KEYS",
    "KEYS",
    "Api",
    "Stack",
    "WorkerRunner",
    "auth",
    "fresh_settings",
    "running_stack",
]

KEYS = {
    "editor": "k-editor-0123456789",
    "en-desk": "k-endesk-0123456789",
    "en-fixer": "k-enfixer-012345678",
    "corrector": "k-corrector-0123456",
    "admin": "k-admin-012345678901",
}
API_KEYS = json.dumps(
    [
        {"name": "editor", "key": KEYS["editor"], "scopes": ["publish", "correct", "retract"]},
        {"name": "en-desk", "key": KEYS["en-desk"], "scopes": ["publish"], "editions": ["en"]},
        {
            "name": "en-fixer",
            "key": KEYS["en-fixer"],
            "scopes": ["correct", "retract"],
            "editions": ["en"],
        },
        {"name": "corrector", "key": KEYS["corrector"], "scopes": ["correct"]},
        {"name": "admin", "key": KEYS["admin"], "scopes": ["admin"]},
    ]
)


def fresh_settings(redis_url: str, **overrides: Any) -> Settings:
    """Settings for a test service on an emptied private Redis: the test keys, a fast
    worker poll, and the write limits off (tests post far faster than editors)."""
    with redis_sync.Redis.from_url(redis_url) as r:
        r.flushall()
    base: dict[str, Any] = {
        "redis_url": redis_url,
        "api_keys": API_KEYS,
        "worker_poll_delay": 0.01,
        "rate_limit_per_key": "",
        "rate_limit_per_ip": "",
    }
    return Settings(**{**base, **overrides})


def auth(name: str = "editor") -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


class Api:
    """A running API process (in this event loop, on a real socket)."""

    def __init__(self, settings: Settings, port: int = 0, host: str = "127.0.0.1") -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.host = host
        self.sock = bind(host, port)
        self.port = self.sock.getsockname()[1]
        self.server = TickerServer(server_config(self.app, settings, log_level="warning"), self.app)
        self.task: asyncio.Task[None] | None = None

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

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

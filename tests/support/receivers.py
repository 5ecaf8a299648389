"""Real HTTP receivers on loopback for webhook and push tests (uvicorn on port 0).

A receiver records every request, and separately the ones it acknowledged
(answered 2xx while the sender was still connected). Its ``plan`` decides each
answer: a status, a status with headers, or ``HANG`` (hold the request until
the sender gives up or ``release()`` is called).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import uvicorn
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tests.support.helpers import wait_for
from ticker.serve.server import bind

__all__ = ["HANG", "Hit", "Receiver", "receiver"]

HANG = -1


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


Answer = int | tuple[int, dict[str, str]]
Plan = Callable[[Hit, int], Answer | Awaitable[Answer]]


class Receiver:
    def __init__(self, plan: Plan | None = None, port: int = 0) -> None:
        self.plan: Plan = plan or (lambda hit, n: 200)
        self.hits: list[Hit] = []
        self.acked: list[Hit] = []
        self.aborted: list[Hit] = []
        self._release = asyncio.Event()
        self.sock = bind("127.0.0.1", port)
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", interface="asgi3")
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def release(self) -> None:
        self._release.set()

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            body = await request.body()
        except ClientDisconnect:
            return  # the sender died mid-request: nothing was delivered
        hit = Hit(request.method, request.url.path, dict(request.headers), body)
        self.hits.append(hit)
        answer = self.plan(hit, len(self.hits))
        if asyncio.iscoroutine(answer):
            answer = await answer
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        if status == HANG:
            while not self._release.is_set():
                if await request.is_disconnected():
                    self.aborted.append(hit)
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._release.wait(), 0.05)
            status = 200
        await Response(b'{"ok":true}', status, headers, "application/json")(scope, receive, send)
        if 200 <= status < 300:
            self.acked.append(hit)

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        await wait_for(lambda: self.server.started, 10, what="the receiver to start")

    async def stop(self) -> None:
        self.release()
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)


@contextlib.asynccontextmanager
async def receiver(plan: Plan | None = None, port: int = 0) -> AsyncIterator[Receiver]:
    r = Receiver(plan, port)
    await r.start()
    try:
        yield r
    finally:
        await r.stop()

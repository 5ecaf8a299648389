"""The ASGI app: routes, and the resources its lifespan holds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from arq.connections import ArqRedis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from ticker import intake, pages
from ticker.auth import KeyRing
from ticker.config import Settings
from ticker.constants import Keys
from ticker.cors import cors_middleware
from ticker.errors import exception_handlers
from ticker.events import Event
from ticker.hub import Hub
from ticker.logs import RequestContext
from ticker.metrics import CONTENT_TYPE_LATEST, Metrics
from ticker.openapi import openapi_document
from ticker.sse import stream_endpoint
from ticker.store import Store
from ticker.subscriber import Subscriber
from ticker.ws import ws_endpoint

__all__ = ["create_app"]


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = request.state
    checks = {"redis": False, "subscription": state.subscriber.live}
    with contextlib.suppress(Exception):
        checks["redis"] = bool(await asyncio.wait_for(state.redis.ping(), 1.0))
    ok = all(checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503
    )


async def metrics_endpoint(request: Request) -> Response:
    state = request.state
    body = await state.metrics.render(state.redis, state.keys)
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(request.state.settings.editions))


async def _heartbeat(hub: Hub, settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(settings.sse_ping_seconds)
        hub.heartbeat(loop.time(), settings.client_send_timeout)


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; ``ticker serve`` calls this once per process."""
    settings = settings or Settings.from_env()
    keys = Keys(settings.redis_prefix)
    keyring = KeyRing.from_entries(settings.api_key_entries())
    metrics = Metrics()

    def observe(event: Event, delivered: int) -> None:
        metrics.events.labels(event.type).inc()
        metrics.deliveries.inc(delivered)
        metrics.lag.observe(max(0.0, time.time() - event.key[0] / 1000))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        # Short timeouts: with Redis hung or gone, the intake answers 503 quickly.
        redis = ArqRedis.from_url(
            settings.redis_url,
            socket_connect_timeout=settings.redis_timeout,
            socket_timeout=settings.redis_timeout,
            health_check_interval=10,
        )
        hub = Hub(
            settings.client_queue_max, observe=observe, on_reset=metrics.resets.labels("node").inc
        )
        store = Store(redis, keys)
        subscriber = Subscriber(redis, keys, hub, store, watchdog_seconds=settings.catchup_seconds)
        tasks = [
            asyncio.create_task(subscriber.run(), name="ticker-subscriber"),
            asyncio.create_task(_heartbeat(hub, settings), name="ticker-heartbeat"),
        ]
        app.state.hub = hub  # for the server's shutdown hook
        try:
            yield {
                "metrics": metrics,
                "settings": settings,
                "keys": keys,
                "keyring": keyring,
                "redis": redis,
                "arq": redis,
                "hub": hub,
                "store": store,
                "subscriber": subscriber,
            }
        finally:
            hub.close_all("shutdown")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await redis.aclose()

    routes = [
        *intake.routes,
        Route("/v1/stream", stream_endpoint, methods=["GET"]),
        WebSocketRoute("/v1/ws", ws_endpoint),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *pages.routes,
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        # Request context outermost, so origin refusals are logged and counted too.
        middleware=[
            Middleware(RequestContext, metrics=metrics),
            cors_middleware(settings.allowed_origins),
        ],
    )

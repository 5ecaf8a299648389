"""The ASGI app: routes, and the resources its lifespan holds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from ticker import pages
from ticker.config import Settings
from ticker.constants import SSE_PATH, WS_PATH, Keys
from ticker.desk import auth as desk_auth
from ticker.desk import board as desk_board
from ticker.desk import oidc as desk_oidc
from ticker.disconnect import Disconnect
from ticker.events import Event
from ticker.intake import api as intake
from ticker.intake import held, listing
from ticker.intake.auth import KeyRing
from ticker.logs import RequestContext
from ticker.metrics import CONTENT_TYPE_LATEST, Metrics
from ticker.middleware.authlimit import AuthFailures, auth_failure_middleware
from ticker.middleware.conncap import connection_cap_middleware
from ticker.middleware.cors import cors_middleware
from ticker.middleware.errors import exception_handlers
from ticker.middleware.ratelimit import RateLimits, rate_limit_middleware
from ticker.middleware.secheaders import security_headers_middleware
from ticker.openapi import openapi_document
from ticker.redis_conn import connect
from ticker.stream import feed_api
from ticker.stream.gate import stream_gate
from ticker.stream.hub import Hub
from ticker.stream.reads import Store
from ticker.stream.sse import stream_endpoint
from ticker.stream.subscriber import Subscriber
from ticker.stream.ws import ws_endpoint
from ticker.supervise import supervised_processes
from ticker.webhooks import api as webhook_api
from ticker.webpush import api as webpush_api

__all__ = ["create_app"]


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _answers(client: Redis) -> bool:
    """Whether ``client`` answers PING within the readiness bound (1 s)."""
    with contextlib.suppress(Exception):
        return bool(await asyncio.wait_for(client.ping(), 1.0))
    return False


async def readyz(request: Request) -> Response:
    state = request.state
    # The queue is checked too: an API whose intake cannot enqueue is not ready. When it
    # is the data client (no TICKER_QUEUE_REDIS_URL), one PING answers for both.
    if state.arq is state.redis:
        redis = queue = await _answers(state.redis)
    else:
        redis, queue = await asyncio.gather(_answers(state.redis), _answers(state.arq))
    checks = {"redis": redis, "queue": queue, "subscription": state.subscriber.live}
    ok = all(checks.values())
    body: dict[str, object] = {"status": "ok" if ok else "unavailable", "checks": checks}
    if (processes := supervised_processes()) is not None:
        # Under `ticker serve --workers N`: how many of the N are serving now (this
        # one is, so still 200; a dead sibling is being restarted).
        body["processes"] = processes
    return JSONResponse(body, 200 if ok else 503)


async def metrics_endpoint(request: Request) -> Response:
    state = request.state
    body = await state.metrics.render(state.redis, state.keys, state.arq)
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
        metrics.child(metrics.events, event.type).inc()
        metrics.deliveries.inc(delivered)
        metrics.lag.observe(max(0.0, time.time() - event.key[0] / 1000))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        conns = connect(settings)  # plain Redis, Sentinel or Cluster (ticker.redis_conn)
        redis = conns.data
        hub = Hub(
            settings.client_queue_max,
            observe=observe,
            on_reset=lambda scope: metrics.resets.labels(scope).inc(),
            recent=settings.replay_cache_events,
        )
        store = Store(redis, keys)
        subscriber = Subscriber(
            redis,
            keys,
            hub,
            store,
            sharded=conns.sharded,
            watchdog_seconds=settings.catchup_seconds,
        )
        tasks = [
            asyncio.create_task(subscriber.run(), name="ticker-subscriber"),
            asyncio.create_task(_heartbeat(hub, settings), name="ticker-heartbeat"),
        ]
        app.state.hub = hub  # for the server's shutdown hook
        ratelimits = RateLimits(
            redis, keys, settings.rate_limit_per_key, settings.rate_limit_per_ip
        )
        try:
            yield {
                "metrics": metrics,
                "settings": settings,
                "keys": keys,
                "keyring": keyring,
                "redis": redis,
                "arq": conns.queue,
                "hub": hub,
                "store": store,
                "subscriber": subscriber,
                "desk": desk_auth.DeskSessions(redis, keys, settings),
                "ratelimits": ratelimits,
                "authfailures": AuthFailures(ratelimits.limiter, settings.rate_limit_auth_failures),
            }
        finally:
            hub.close_all(Disconnect.SHUTDOWN)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await conns.aclose()

    routes = [
        *intake.routes,
        *held.routes,
        *listing.routes,
        *desk_auth.routes,
        *desk_board.routes,
        *desk_oidc.routes,
        *webhook_api.routes,
        *feed_api.routes,
        *webpush_api.routes,
        Route(SSE_PATH, stream_endpoint, methods=["GET"]),
        WebSocketRoute(WS_PATH, ws_endpoint),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *pages.routes,
    ]
    # Request context outermost, so origin refusals are logged and counted too.
    # Streams are public: write limits, failed-auth limits and editor sessions are not
    # theirs, and the fast lane mirrors exactly the layers streams keep.
    request_only = [
        auth_failure_middleware(),
        rate_limit_middleware(),
        desk_auth.desk_session_middleware(),
    ]
    middleware = [
        Middleware(RequestContext, metrics=metrics),
        security_headers_middleware(),
        cors_middleware(settings.allowed_origins),
        connection_cap_middleware(settings.max_connections_per_ip),
        *request_only,
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        middleware=middleware,
    )
    # The same middleware before the streaming endpoints, without the router's
    # layers (ticker.stream.gate); ticker.serve.server.TransportTap sends streams there.
    stream_middleware = [m for m in middleware if m not in request_only]
    app.state.streams = stream_gate(stream_middleware, exception_handlers)  # type: ignore[arg-type]
    return app

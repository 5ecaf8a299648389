"""Web Push for browsers: the VAPID public key and the subscription routes.

Public (a reader's browser calls them, with no key), under the origin policy
and the per-address write limit like every public write:

- ``GET /v1/push/key``: the application server key for ``pushManager.subscribe``.
- ``POST /v1/push/subscriptions``: store a subscription with its filter; the
  same endpoint again is an update (subscriptions are keyed by a hash of it).
- ``DELETE /v1/push/subscriptions/{id}``: forget it (the id the POST answered).

A subscription is stored only once it has passed every check: https, a known
push service, keys of the right lengths on the right curve, and an endpoint
that resolves to public addresses (the SSRF guard, as for webhooks).
"""

from __future__ import annotations

import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ticker.apidoc import answers, json_body, json_response, path_param, strip_dialect
from ticker.exceptions import NotFoundError, ValidationError
from ticker.intake.api import read_json
from ticker.webhooks.netguard import AddressRefused, resolve
from ticker.webpush.messages import parse_subscription, subscription_schema
from ticker.webpush.store import WebPushStore

__all__ = ["openapi_paths", "routes"]

_SUB_ID = re.compile(r"^[0-9a-f]{64}$")
KEY_CACHE = "public, max-age=300"


def _store(request: Request) -> WebPushStore:
    return WebPushStore(request.state.redis, request.state.keys)


async def public_key(request: Request) -> Response:
    """The VAPID public key pages subscribe with."""
    keys = await _store(request).vapid(request.state.settings)
    return JSONResponse({"public_key": keys.public_key}, headers={"Cache-Control": KEY_CACHE})


async def subscribe(request: Request) -> Response:
    """Store a browser's subscription and what it wants pushed; a repeat updates it."""
    settings = request.state.settings
    data = await read_json(request, settings.max_body_bytes)
    sub = parse_subscription(
        data, tuple(settings.editions), settings.webpush_allowed_hosts, now=time.time()
    )
    try:
        await resolve(sub.endpoint, allow_private=settings.webpush_allow_private)
    except AddressRefused as exc:
        raise ValidationError(
            f"subscription.endpoint is refused: {exc}", "subscription.endpoint"
        ) from None
    created = await _store(request).put(sub)
    body = {"id": sub.id, "status": "created" if created else "updated"}
    return JSONResponse(body, 201 if created else 200)


async def unsubscribe(request: Request) -> Response:
    """Forget a subscription by the id its POST answered."""
    sub_id = request.path_params["sub_id"]
    if not _SUB_ID.match(sub_id) or not await _store(request).delete(sub_id):
        raise NotFoundError("no such subscription", "id")
    return Response(status_code=204)


routes = [
    Route("/v1/push/key", public_key, methods=["GET"]),
    Route("/v1/push/subscriptions", subscribe, methods=["POST"]),
    Route("/v1/push/subscriptions/{sub_id}", unsubscribe, methods=["DELETE"]),
]


def openapi_paths(editions: tuple[str, ...]) -> dict[str, Any]:
    """The Web Push routes' OpenAPI paths, from the schema the route validates with."""

    def public(status: str, description: str, *codes: int) -> dict[str, Any]:
        # Public routes are rate limited (429) and may find Redis away (503).
        return answers(status, description, 429, 503, *codes)

    sub_id = path_param("sub_id", {"type": "string", "pattern": "^[0-9a-f]{64}$"})
    return {
        "/v1/push/key": {
            "get": {
                "summary": "The VAPID public key to subscribe with (public)",
                "security": [],
                "responses": public("200", "the application server key"),
            }
        },
        "/v1/push/subscriptions": {
            "post": {
                "summary": "Subscribe a browser to Web Push alerts (public; a repeat updates)",
                "security": [],
                "requestBody": json_body(strip_dialect(subscription_schema(editions))),
                "responses": {
                    **public("201", "stored", 400, 408, 413, 415, 422),
                    "200": json_response("updated"),
                },
            }
        },
        "/v1/push/subscriptions/{sub_id}": {
            "delete": {
                "summary": "Forget a subscription (public; its id hashes its secret endpoint)",
                "security": [],
                "parameters": [sub_id],
                "responses": public("204", "forgotten", 404),
            }
        },
    }

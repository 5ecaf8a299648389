"""The webhook admin API (``admin`` scope): endpoints, secrets, dead letters, replay."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import httpx
import jsonschema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ticker.apidoc import answers, json_body, path_param, strip_dialect
from ticker.exceptions import NotFoundError, ValidationError
from ticker.intake.api import authenticate, now_iso, read_json
from ticker.intake.schema import StrictValidator, raise_first_error
from ticker.jobs import enqueue_delivery
from ticker.webhooks.netguard import AddressRefused, resolve
from ticker.webhooks.store import Endpoint, WebhookStore, filter_of

__all__ = ["openapi_paths", "routes", "webhook_schema"]

_SLUG = {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]{0,39}$"}
_ID = re.compile(r"^[0-9a-f]{32}$")


@lru_cache(maxsize=8)
def webhook_schema(editions: tuple[str, ...], partial: bool = False) -> dict[str, Any]:
    """JSON Schema of POST (url required) and PATCH (any field) bodies."""
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "url": {"type": "string", "maxLength": 2048, "pattern": r"^https?://[^\s<>\"@]+$"},
            "filter": {
                "type": "object",
                "properties": {
                    "editions": {
                        "type": "array",
                        "items": {"type": "string", "enum": list(editions)},
                        "uniqueItems": True,
                    },
                    "categories": {"type": "array", "items": _SLUG, "maxItems": 20},
                    "regions": {"type": "array", "items": _SLUG, "maxItems": 20},
                    "max_urgency": {"type": "integer", "minimum": 1, "maximum": 9},
                },
                "additionalProperties": False,
            },
            "enabled": {"type": "boolean"},
            "description": {"type": "string", "maxLength": 200},
        },
        "additionalProperties": False,
    }
    if partial:
        schema["minProperties"] = 1
    else:
        schema["required"] = ["url"]
    return schema


@lru_cache(maxsize=8)
def _validator(editions: tuple[str, ...], partial: bool) -> jsonschema.Draft202012Validator:
    return StrictValidator(webhook_schema(editions, partial))  # type: ignore[no-any-return]


_REPLAY = StrictValidator(
    {
        "type": "object",
        "properties": {"event_id": {"type": "string", "pattern": r"^\d{1,20}-\d{1,20}$"}},
        "additionalProperties": False,
    }
)


_ROTATE = StrictValidator(
    {
        "type": "object",
        "properties": {"grace_seconds": {"type": "integer", "minimum": 0, "maximum": 604800}},
        "additionalProperties": False,
    }
)


async def _admin_body(request: Request, partial: bool) -> dict[str, Any]:
    authenticate(request).require("admin")
    state = request.state
    data = await read_json(request, state.settings.max_body_bytes)
    raise_first_error(_validator(tuple(state.settings.editions), partial), data)
    if "url" in data:
        await _check_url(request, data["url"])
    return dict(data)


async def _check_url(request: Request, url: str) -> None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValidationError(f"url is not a valid URL: {exc}", "url") from None
    if not parsed.host:
        raise ValidationError("url needs a host", "url")
    try:
        await resolve(url, allow_private=request.state.settings.webhook_allow_private)
    except AddressRefused as exc:
        raise ValidationError(f"url is refused: {exc}", "url") from None


def _store(request: Request) -> WebhookStore:
    return WebhookStore(request.state.redis, request.state.keys)


async def _endpoint(request: Request) -> Endpoint:
    authenticate(request).require("admin")
    endpoint_id = request.path_params["endpoint_id"]
    found = await _store(request).get(endpoint_id) if _ID.match(endpoint_id) else None
    if found is None:
        raise NotFoundError(f"no webhook {endpoint_id!r}", "id")
    return found


async def _full_view(request: Request, endpoint: Endpoint) -> dict[str, Any]:
    return {**endpoint.view(), "delivery": await _store(request).state(endpoint.id)}


async def create_webhook(request: Request) -> Response:
    data = await _admin_body(request, partial=False)
    endpoint = await _store(request).create(
        url=data["url"],
        filter=filter_of(data.get("filter") or {}),
        enabled=data.get("enabled", True),
        description=data.get("description", ""),
        now=now_iso(),
    )
    # The secret is shown once, here (and on rotation).
    body = {**(await _full_view(request, endpoint)), "secret": endpoint.secret}
    return JSONResponse(body, 201, {"Location": f"/v1/webhooks/{endpoint.id}"})


async def list_webhooks(request: Request) -> Response:
    authenticate(request).require("admin")
    endpoints = await _store(request).all()
    return JSONResponse({"webhooks": [await _full_view(request, ep) for ep in endpoints]})


async def get_webhook(request: Request) -> Response:
    return JSONResponse(await _full_view(request, await _endpoint(request)))


async def update_webhook(request: Request) -> Response:
    endpoint = await _endpoint(request)
    data = await _admin_body(request, partial=True)
    fields: dict[str, Any] = {**data, "updated_at": now_iso()}
    if "filter" in data:
        fields["filter"] = filter_of(data["filter"])
    store = _store(request)
    await store.update(endpoint.id, fields)
    if data.get("enabled"):
        await _nudge(request, endpoint.id, "enabled")
    updated = await store.get(endpoint.id)
    assert updated is not None
    return JSONResponse(await _full_view(request, updated))


async def delete_webhook(request: Request) -> Response:
    endpoint = await _endpoint(request)
    await _store(request).delete(endpoint.id)
    return Response(status_code=204)


async def rotate_secret(request: Request) -> Response:
    """A new secret. ``{"grace_seconds": N}`` keeps signing with the old one too for N
    seconds (up to a week), so receivers can switch without a failed delivery."""
    endpoint = await _endpoint(request)
    body: dict[str, Any] = {}
    if request.headers.get("content-type"):
        body = await read_json(request, request.state.settings.max_body_bytes)
        raise_first_error(_ROTATE, body)
    grace = int(body.get("grace_seconds", 0))
    secret = await _store(request).rotate_secret(endpoint.id, now_iso(), grace)
    return JSONResponse({"id": endpoint.id, "secret": secret, "grace_seconds": grace})


async def dead_letters(request: Request) -> Response:
    endpoint = await _endpoint(request)
    return JSONResponse(
        {"id": endpoint.id, "dead_letters": await _store(request).dead_letters(endpoint.id)}
    )


async def replay(request: Request) -> Response:
    """Queue dead letters again (all, or ``{"event_id": ...}``), after the backlog."""
    endpoint = await _endpoint(request)
    body: dict[str, Any] = {}
    if request.headers.get("content-type"):
        body = await read_json(request, request.state.settings.max_body_bytes)
        raise_first_error(_REPLAY, body)
    event_id = body.get("event_id")
    moved = await _store(request).replay(endpoint.id, event_id)
    if event_id is not None and not moved:
        raise NotFoundError(f"no dead letter for event {event_id!r}", "event_id")
    if moved:
        await _nudge(request, endpoint.id, f"replay:{moved[-1]}:{now_iso()}")
    return JSONResponse({"id": endpoint.id, "replayed": moved}, 202)


async def _nudge(request: Request, endpoint_id: str, reason: str) -> None:
    await enqueue_delivery(request.state.arq, request.state.keys, endpoint_id, reason)


routes = [
    Route("/v1/webhooks", create_webhook, methods=["POST"]),
    Route("/v1/webhooks", list_webhooks, methods=["GET"]),
    Route("/v1/webhooks/{endpoint_id}", get_webhook, methods=["GET"]),
    Route("/v1/webhooks/{endpoint_id}", update_webhook, methods=["PATCH"]),
    Route("/v1/webhooks/{endpoint_id}", delete_webhook, methods=["DELETE"]),
    Route("/v1/webhooks/{endpoint_id}/rotate-secret", rotate_secret, methods=["POST"]),
    Route("/v1/webhooks/{endpoint_id}/dead-letters", dead_letters, methods=["GET"]),
    Route("/v1/webhooks/{endpoint_id}/dead-letters/replay", replay, methods=["POST"]),
]


def openapi_paths(editions: tuple[str, ...]) -> dict[str, Any]:
    """The webhook admin API's OpenAPI paths, from the same schemas it validates with."""

    def ok(status: str, description: str, *codes: int) -> dict[str, Any]:
        # Every route authenticates (401, 403) and may find Redis away (503).
        return answers(status, description, 401, 403, 503, *codes)

    reads_body = (400, 408, 413, 415, 422)
    one = {"parameters": [path_param("endpoint_id", {"type": "string"})]}
    return {
        "/v1/webhooks": {
            "post": {
                "summary": "Register a webhook endpoint (admin); the secret is shown once",
                "requestBody": json_body(strip_dialect(webhook_schema(editions))),
                "responses": ok("201", "the endpoint, with its secret", *reads_body),
            },
            "get": {"summary": "List webhook endpoints", "responses": ok("200", "list")},
        },
        "/v1/webhooks/{endpoint_id}": {
            **one,
            "get": {
                "summary": "An endpoint and its delivery state",
                "responses": ok("200", "", 404),
            },
            "patch": {
                "summary": "Change url, filter, enabled, description",
                "requestBody": json_body(strip_dialect(webhook_schema(editions, partial=True))),
                "responses": ok("200", "the endpoint", 404, *reads_body),
            },
            "delete": {
                "summary": "Delete an endpoint",
                "responses": ok("204", "deleted", 404),
            },
        },
        "/v1/webhooks/{endpoint_id}/rotate-secret": {
            **one,
            "post": {
                "summary": "A new secret",
                "responses": ok("200", "the new secret", 404, *reads_body),
            },
        },
        "/v1/webhooks/{endpoint_id}/dead-letters": {
            **one,
            "get": {
                "summary": "Events that ran out of attempts",
                "responses": ok("200", "", 404),
            },
        },
        "/v1/webhooks/{endpoint_id}/dead-letters/replay": {
            **one,
            "post": {
                "summary": "Queue dead letters again (all, or one event_id)",
                "responses": ok("202", "the replayed event ids", 404, *reads_body),
            },
        },
    }

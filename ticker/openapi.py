"""The OpenAPI 3.1 document of the public API, built from the same JSON schemas
the intake validates with, so the two cannot drift apart."""

from __future__ import annotations

from typing import Any

from ticker import __version__
from ticker.apidoc import (
    ERROR,
    errors,
    json_body,
    json_response,
    path_param,
    query_param,
    strip_dialect,
)
from ticker.desk.openapi import (
    EITHER,
    PREFER,
    VIEW_EXTRAS,
    desk_paths,
    desk_security,
    list_operation,
)
from ticker.intake.schema import item_schema
from ticker.stream.feed_api import openapi_paths as feed_paths
from ticker.webhooks.api import openapi_paths as webhook_paths
from ticker.webpush.api import openapi_paths as webpush_paths

__all__ = ["openapi_document"]

_VIEW = {
    "type": "object",
    "required": ["id", "status", "version", "item", "status_url"],
    "properties": {
        "id": {"type": "string"},
        "status": {
            "type": "string",
            "enum": [
                "queued",
                "embargoed",
                "held",
                "published",
                "duplicate",
                "held",
                "rejected",
                "retracted",
                "expired",
                "cancelled",
            ],
        },
        "version": {"type": "integer"},
        "published_version": {"type": "integer"},
        "item": {"type": "object"},
        "event_id": {"type": ["string", "null"]},
        "duplicate_of": {"type": ["string", "null"]},
        "match": {
            "description": "Why a held item is held (docs/story-matching.md).",
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["score", "reason", "shared", "differing"],
                    "properties": {
                        "score": {"type": "number"},
                        "reason": {"type": "string"},
                        "shared": {"type": "array", "items": {"type": "string"}},
                        "differing": {"type": "array", "items": {"type": "string"}},
                    },
                },
            ],
        },
        "reason": {"type": ["string", "null"]},
        "status_url": {"type": "string"},
        **VIEW_EXTRAS,
    },
}


def _ticket(*required: str) -> dict[str, Any]:
    """What a queued write answers: the item id, its status and where to follow it."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string"},
            "status_url": {"type": "string"},
        },
    }


def openapi_document(editions: tuple[str, ...]) -> dict[str, Any]:
    item_id = path_param("item_id", {"type": "string", "pattern": "^[0-9a-f]{32}$"})
    view = {"$ref": "#/components/schemas/ItemView"}
    filters = [
        query_param(n) for n in ("edition", "category", "region", "max_urgency", "last_event_id")
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ticker",
            "version": __version__,
            "description": (
                "Real-time breaking-news push service. The WebSocket endpoint GET /v1/ws "
                "takes the same filters as /v1/stream (see docs/api.md)."
            ),
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "deskSession": desk_security(),
            },
            "schemas": {
                "ItemInput": strip_dialect(item_schema(editions)),
                "ItemPatch": strip_dialect(item_schema(editions, partial=True)),
                "ItemView": _VIEW,
                "Error": ERROR,
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/items": {
                "get": list_operation(editions),
                "post": {
                    "summary": "Post a breaking item",
                    "security": EITHER,
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "maxLength": 200},
                        },
                        PREFER,
                    ],
                    "requestBody": json_body({"$ref": "#/components/schemas/ItemInput"}),
                    "responses": {
                        "200": json_response("decided within the Prefer: wait time", view),
                        "202": json_response("accepted", _ticket("id", "status")),
                        **errors(400, 401, 403, 408, 413, 415, 422, 429, 503),
                    },
                },
            },
            "/v1/items/{item_id}": {
                "parameters": [item_id],
                "get": {
                    "summary": "An item and its status",
                    "responses": {"200": json_response("the item", view), **errors(401, 404, 503)},
                },
                "patch": {
                    "summary": "Correct an item (a new version)",
                    "security": EITHER,
                    "parameters": [PREFER],
                    "requestBody": json_body({"$ref": "#/components/schemas/ItemPatch"}),
                    "responses": {
                        "200": json_response("applied within the Prefer: wait time", view),
                        "202": json_response("accepted", view),
                        **errors(400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 503),
                    },
                },
                "delete": {
                    "summary": "Retract an item (cancel it if embargoed or held)",
                    "security": EITHER,
                    "parameters": [PREFER, query_param("reason")],
                    "responses": {
                        "200": json_response("applied within the Prefer: wait time", view),
                        "202": json_response("accepted", view),
                        **errors(400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 503),
                    },
                },
            },
            "/v1/items/{item_id}/publish": {
                "parameters": [item_id],
                "post": {
                    "summary": "Publish a held near-duplicate anyway (scope publish)",
                    "responses": {
                        "202": json_response(
                            "queued for publication", _ticket("id", "status", "status_url")
                        ),
                        **errors(401, 403, 404, 409, 429, 503),
                    },
                },
            },
            "/v1/items/{item_id}/history": {
                "parameters": [item_id],
                "get": {
                    "summary": "The item's audit trail",
                    "responses": {
                        "200": json_response("history", {"type": "object"}),
                        **errors(401, 404, 503),
                    },
                },
            },
            **webhook_paths(editions),
            **webpush_paths(editions),
            **feed_paths(editions),
            **desk_paths(),
            "/v1/stream": {
                "get": {
                    "summary": "The ticker as Server-Sent Events",
                    "security": [],
                    "parameters": [
                        *filters,
                        {
                            "name": "Last-Event-ID",
                            "in": "header",
                            "required": False,
                            "description": "The last event id seen, `<stream id>.<epoch>` "
                            "(a plain stream id is taken as the current epoch)",
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "an event stream",
                            "content": {"text/event-stream": {}},
                        },
                        **errors(400, 429, 503),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "security": [],
                    "responses": {"200": json_response("alive", {"type": "object"})},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness",
                    "description": "`checks`: `redis` (the data Redis answers within 1 s), "
                    "`queue` (the job queue's Redis answers, so the intake can enqueue; "
                    "the same PING when it is the data Redis) and `subscription` (this "
                    "process follows the stream); 503 unless all are true. Under "
                    "`ticker serve --workers N` the body also has `processes`: "
                    "`expected`, `alive` and `restarts` (dead processes replaced).",
                    "security": [],
                    "responses": {
                        "200": json_response("ready", {"type": "object"}),
                        "503": json_response("not ready", {"type": "object"}),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (text exposition format)",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "metrics",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
    }

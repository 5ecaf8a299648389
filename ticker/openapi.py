"""The OpenAPI 3.1 document of the public API, built from the same JSON schemas
the intake validates with, so the two cannot drift apart."""

from __future__ import annotations

from typing import Any

from ticker import __version__
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

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "field": {"type": ["string", "null"]},
                "message": {"type": "string"},
            },
        }
    },
}
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


def _errors(*codes: int) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Error"}
    return {
        str(c): {"description": "error", "content": {"application/json": {"schema": ref}}}
        for c in codes
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _strip(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "$schema"}


def openapi_document(editions: tuple[str, ...]) -> dict[str, Any]:
    item_id = {
        "name": "item_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
    }
    view = {"$ref": "#/components/schemas/ItemView"}
    filters = [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
        for n in ("edition", "category", "region", "max_urgency", "last_event_id")
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
                "ItemInput": _strip(item_schema(editions)),
                "ItemPatch": _strip(item_schema(editions, partial=True)),
                "ItemView": _VIEW,
                "Error": _ERROR,
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
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ItemInput"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json(view, "decided within the Prefer: wait time"),
                        "202": _json(
                            {
                                "type": "object",
                                "required": ["id", "status"],
                                "properties": {
                                    "id": {"type": "string"},
                                    "status": {"type": "string"},
                                    "status_url": {"type": "string"},
                                },
                            },
                            "accepted",
                        ),
                        **_errors(400, 401, 403, 408, 413, 415, 422, 429, 503),
                    },
                },
            },
            "/v1/items/{item_id}": {
                "parameters": [item_id],
                "get": {
                    "summary": "An item and its status",
                    "responses": {"200": _json(view, "the item"), **_errors(401, 404, 503)},
                },
                "patch": {
                    "summary": "Correct an item (a new version)",
                    "security": EITHER,
                    "parameters": [PREFER],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ItemPatch"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json(view, "applied within the Prefer: wait time"),
                        "202": _json(view, "accepted"),
                        **_errors(400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 503),
                    },
                },
                "delete": {
                    "summary": "Retract an item (cancel it if embargoed or held)",
                    "security": EITHER,
                    "parameters": [
                        PREFER,
                        {
                            "name": "reason",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": _json(view, "applied within the Prefer: wait time"),
                        "202": _json(view, "accepted"),
                        **_errors(400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 503),
                    },
                },
            },
            "/v1/items/{item_id}/publish": {
                "parameters": [item_id],
                "post": {
                    "summary": "Publish a held near-duplicate anyway (scope publish)",
                    "responses": {
                        "202": _json(
                            {
                                "type": "object",
                                "required": ["id", "status", "status_url"],
                                "properties": {
                                    "id": {"type": "string"},
                                    "status": {"type": "string"},
                                    "status_url": {"type": "string"},
                                },
                            },
                            "queued for publication",
                        ),
                        **_errors(401, 403, 404, 409, 429, 503),
                    },
                },
            },
            "/v1/items/{item_id}/history": {
                "parameters": [item_id],
                "get": {
                    "summary": "The item's audit trail",
                    "responses": {
                        "200": _json({"type": "object"}, "history"),
                        **_errors(401, 404, 503),
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
                        **_errors(400, 429, 503),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "alive")},
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
                        "200": _json({"type": "object"}, "ready"),
                        "503": _json({"type": "object"}, "not ready"),
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

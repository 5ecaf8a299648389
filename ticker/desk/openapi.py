"""The OpenAPI paths of the editors' desk: the item listing, sign-in and the desk feed,
and the ``Prefer: wait`` header of the intake's writes."""

from __future__ import annotations

from typing import Any

from ticker.apidoc import errors, json_body, json_response, query_param
from ticker.intake.itemview import STATUSES
from ticker.intake.listing import MAX_LIMIT

__all__ = ["EITHER", "PREFER", "VIEW_EXTRAS", "desk_paths", "desk_security", "list_operation"]

PREFER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "description": (
        "RFC 7240 `wait=N` (seconds, at most 10): answer 200 with the decision (published, "
        "duplicate, held, embargoed, applied) if it is taken within N seconds, else 202 with "
        "the item as it is; the answer says `Preference-Applied`."
    ),
    "schema": {"type": "string", "maxLength": 100},
}
VIEW_EXTRAS: dict[str, Any] = {
    "submitted_by": {"type": ["string", "null"]},
    "created_at": {"type": ["string", "null"]},
    "closed": {"type": ["string", "null"]},
    "retraction": {
        "type": ["object", "null"],
        "properties": {
            "kind": {"type": "string", "enum": ["retraction", "expiry"]},
            "reason": {"type": ["string", "null"]},
            "by": {"type": ["string", "null"]},
            "at": {"type": ["string", "null"]},
        },
    },
    "match": {"type": ["object", "null"]},
}
_ME = {
    "type": "object",
    "required": ["name", "role", "scopes", "csrf_token", "expires_at"],
    "properties": {
        "name": {"type": "string"},
        "role": {"type": "string"},
        "scopes": {"type": "array", "items": {"type": "string"}},
        "editions": {"type": ["array", "null"], "items": {"type": "string"}},
        "disabled": {"type": "boolean"},
        "principal": {"type": "string"},
        "csrf_token": {"type": "string"},
        "expires_at": {"type": "integer"},
    },
}


def desk_security() -> dict[str, Any]:
    """The console's session cookie, beside the bearer API key."""
    return {"type": "apiKey", "in": "cookie", "name": "ticker_desk"}


EITHER: list[dict[str, list[str]]] = [{"bearer": []}, {"deskSession": []}]


def list_operation(editions: tuple[str, ...]) -> dict[str, Any]:
    """GET /v1/items."""
    view = {"$ref": "#/components/schemas/ItemView"}
    params = [
        query_param("edition", f"comma list of {', '.join(editions)}"),
        query_param("status", f"comma list of {', '.join(STATUSES)}"),
        query_param("category", "a section slug"),
        query_param("region", "a region slug"),
        query_param("q", "text the headline holds (case-blind)"),
        query_param("since", "created at or after (ISO 8601 with zone)"),
        query_param("until", "created at or before (ISO 8601 with zone)"),
        query_param("limit", f"items per page, 1-{MAX_LIMIT} (default 50)"),
        query_param("cursor", "next_cursor of the page before"),
    ]
    page = {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": view},
            "next_cursor": {"type": ["string", "null"]},
        },
    }
    return {
        "summary": "Items for desks and CMSs: filtered, newest first, cursor paging",
        "security": EITHER,
        "parameters": params,
        "responses": {"200": json_response("a page of items", page), **errors(401, 403, 422, 503)},
    }


def desk_paths() -> dict[str, Any]:
    """Sign-in, sign-out, the session, and the desk feed."""
    login_body = {
        "type": "object",
        "required": ["name", "password"],
        "properties": {"name": {"type": "string"}, "password": {"type": "string"}},
    }
    return {
        "/desk/login": {
            "post": {
                "summary": "Sign in to the editors' console (sets the session cookie)",
                "security": [],
                "requestBody": json_body(login_body),
                "responses": {
                    "200": json_response("signed in", _ME),
                    **errors(400, 401, 408, 413, 415, 422, 429, 503),
                },
            }
        },
        "/desk/logout": {
            "post": {
                "summary": "Sign out (with a session, needs its X-CSRF-Token)",
                "security": [{"deskSession": []}, {}],
                "responses": {"204": {"description": "signed out"}, **errors(403, 503)},
            }
        },
        "/desk/me": {
            "get": {
                "summary": "The signed-in editor, scopes, editions and CSRF token",
                "security": [{"deskSession": []}],
                "responses": {"200": json_response("the session", _ME), **errors(401, 503)},
            }
        },
        "/desk/sign-in-options": {
            "get": {
                "summary": "Whether single sign-on (OpenID Connect) is offered",
                "security": [],
                "responses": {
                    "200": json_response(
                        "the options",
                        {"type": "object", "properties": {"oidc": {"type": "boolean"}}},
                    )
                },
            }
        },
        "/desk/oidc/start": {
            "get": {
                "summary": "Single sign-on: redirect to the OpenID Connect provider",
                "security": [],
                "responses": {"302": {"description": "to the provider"}, **errors(404, 503)},
            }
        },
        "/desk/oidc/callback": {
            "get": {
                "summary": "Single sign-on: back from the provider; sets the session cookie",
                "security": [],
                "parameters": [
                    query_param("code", "the authorization code"),
                    query_param("state", "the state sent at the start"),
                ],
                "responses": {
                    "303": {"description": "signed in: to /console"},
                    **errors(400, 401, 403, 404, 503),
                },
            }
        },
        "/desk/feed": {
            "get": {
                "summary": "The desk board as Server-Sent Events (snapshot, then every status)",
                "security": EITHER,
                "responses": {
                    "200": {
                        "description": "an event stream",
                        "content": {"text/event-stream": {}},
                    },
                    **errors(401, 403, 503),
                },
            }
        },
    }

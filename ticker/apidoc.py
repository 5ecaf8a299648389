"""The pieces every OpenAPI path of the service is built from: the Error schema
and its responses, JSON responses and bodies, path and query parameters.

Pure data: the app's document (``ticker.openapi``) and each API's own paths
(desk, webhooks, Web Push, feeds) use these, so an error answer or a parameter
is written one way everywhere. No imports from the rest of ``ticker``, so every
package may use it without crossing an import contract.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ERROR",
    "answers",
    "errors",
    "json_body",
    "json_response",
    "path_param",
    "query_param",
    "strip_dialect",
]

# The body of every 4xx/5xx answer (ticker.middleware.errors renders it).
ERROR: dict[str, Any] = {
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

_NAMED = "error (a JSON body naming the field)"


def errors(*codes: int, description: str = "error") -> dict[str, Any]:
    """Responses for ``codes``, in the order given, each an Error body."""
    return {
        str(c): json_response(description, {"$ref": "#/components/schemas/Error"}) for c in codes
    }


def answers(status: str, description: str, *codes: int) -> dict[str, Any]:
    """A success answer (JSON, or nothing for 204) and error answers for ``codes`` in
    numeric order, each an Error body naming the field at fault."""
    done = {"description": description} if status == "204" else json_response(description)
    return {status: done, **errors(*sorted(set(codes)), description=_NAMED)}


def json_response(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON response; with no schema the media type is named but left open."""
    media: dict[str, Any] = {} if schema is None else {"schema": schema}
    return {"description": description, "content": {"application/json": media}}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """A required JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def path_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def query_param(name: str, description: str | None = None) -> dict[str, Any]:
    """An optional string query parameter (the handler parses and validates it)."""
    param: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
    }
    return param if description is None else {**param, "description": description}


def strip_dialect(schema: dict[str, Any]) -> dict[str, Any]:
    """A validator's JSON schema without ``$schema`` (the document sets the dialect)."""
    return {k: v for k, v in schema.items() if k != "$schema"}

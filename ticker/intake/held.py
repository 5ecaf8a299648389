"""Held items: an editor publishes a near-duplicate anyway.

The worker holds a headline that tells a recent story again in other words (status
``held``, with ``duplicate_of`` and ``match``); an editor with the ``publish`` scope for
its edition may overrule that. ``DELETE /v1/items/{id}`` cancels a held item, as it
cancels an embargoed one (ticker.intake.accept).
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ticker import lua
from ticker.exceptions import ClientError
from ticker.intake.accept import history_entry
from ticker.intake.api import _replicated, authenticate, load_readable, now_iso, status_url
from ticker.intake.deskfeed import note_status
from ticker.jobs import enqueue_ingest

__all__ = ["routes"]


async def publish_anyway(request: Request) -> Response:
    """``POST /v1/items/{id}/publish``: publish a held item anyway."""
    state = request.state
    key = authenticate(request)
    key.require("publish")
    item_id = request.path_params["item_id"]
    raw = await load_readable(request, key, item_id)
    doc = orjson.loads(raw.get(b"item") or raw[b"submitted"])
    key.require("publish", doc["edition"])
    entry = history_entry(
        "published_anyway",
        key.name,
        now_iso(),
        version=1,
        duplicate_of=(raw.get(b"duplicate_of") or b"").decode() or None,
    )
    outcome, detail = await lua.run(
        state.redis, "release", 2, state.keys.item(item_id), state.keys.history(item_id), entry
    )
    if outcome == b"conflict":
        status = detail.decode()
        raise ClientError(
            f"only a held item can be published anyway; this one is {status}",
            "status",
            status=409,
            code="conflict",
        )
    await enqueue_ingest(state.arq, state.keys, item_id, rev=detail.decode())
    await note_status(state.redis, state.keys, item_id, by=key.name)
    await _replicated(state)
    answer = {"id": item_id, "status": "queued", "status_url": status_url(item_id)}
    return JSONResponse(answer, 202, {"Location": answer["status_url"]})


routes = [Route("/v1/items/{item_id}/publish", publish_anyway, methods=["POST"])]

"""GET /v1/items: the items of the desk, newest first, filtered, with cursor paging.

Items are found through one index (``Keys.items_index``, a sorted set by creation time,
written by the intake script); each page reads at most :data:`SCAN_MAX` index entries, so
a filter matching little of a long history answers quickly with a cursor to go on from.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ticker.exceptions import ForbiddenError, ValidationError
from ticker.intake.api import authenticate
from ticker.intake.auth import ApiKey
from ticker.intake.itemview import STATUSES, desk_view
from ticker.intake.schema import parse_time

__all__ = ["ListQuery", "matches", "parse_query", "readable_editions", "routes"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
SCAN_MAX = 2000  # index entries one page may read
_BATCH = 200
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_CURSOR = re.compile(r"^(\d{1,15}):([0-9a-f]{32})$")
PARAMS = frozenset(
    {"edition", "status", "category", "region", "q", "since", "until", "limit", "cursor"}
)


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A parsed listing request; ``None`` fields do not filter."""

    editions: frozenset[str] | None = None
    statuses: frozenset[str] | None = None
    category: str | None = None
    region: str | None = None
    q: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = DEFAULT_LIMIT
    cursor: tuple[int, str] | None = None


def _csv(value: str, allowed: tuple[str, ...], field: str) -> frozenset[str]:
    parts = frozenset(p.strip() for p in value.split(",") if p.strip())
    bad = sorted(parts - set(allowed))
    if not parts or bad:
        raise ValidationError(f"{field} must be a comma list of {', '.join(allowed)}", field)
    return parts


def _slug(value: str, field: str) -> str:
    if not _SLUG.match(value):
        raise ValidationError(f"{field} must be a section or region slug", field)
    return value


def encode_cursor(score: int, item_id: str) -> str:
    return base64.urlsafe_b64encode(f"{score}:{item_id}".encode()).decode().rstrip("=")


def _decode_cursor(value: str) -> tuple[int, str]:
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    m = _CURSOR.match(text)
    if len(value) > 80 or not m:
        raise ValidationError("cursor is not one this service gave out", "cursor")
    return int(m.group(1)), m.group(2)


def parse_query(params: Mapping[str, str], editions: tuple[str, ...]) -> ListQuery:
    """Validate the query string (pure); a bad or unknown parameter is a 422 naming it."""
    for name in params:
        if name not in PARAMS:
            raise ValidationError(f"{name} is not a known parameter", name)
    q = params.get("q")
    if q is not None and not 1 <= len(q.strip()) <= 200:
        raise ValidationError("q must be 1-200 characters", "q")
    limit = params.get("limit", str(DEFAULT_LIMIT))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        raise ValidationError(f"limit must be an integer from 1 to {MAX_LIMIT}", "limit")
    since = params.get("since")
    until = params.get("until")
    return ListQuery(
        editions=_csv(params["edition"], editions, "edition") if "edition" in params else None,
        statuses=_csv(params["status"], STATUSES, "status") if "status" in params else None,
        category=_slug(params["category"], "category") if "category" in params else None,
        region=_slug(params["region"], "region") if "region" in params else None,
        q=q.strip().casefold() if q is not None else None,
        since_ms=int(parse_time(since, "since").timestamp() * 1000) if since else None,
        until_ms=int(parse_time(until, "until").timestamp() * 1000) if until else None,
        limit=int(limit),
        cursor=_decode_cursor(params["cursor"]) if "cursor" in params else None,
    )


def readable_editions(key: ApiKey, asked: frozenset[str] | None) -> frozenset[str] | None:
    """The editions a key may list: an edition-limited key sees only its own (403 if it
    asks for another); None means every edition. The one edition-read check of the desk."""
    if key.editions is None:
        return asked
    if asked is not None:
        refused = sorted(e for e in asked if not key.may_read(e))
        if refused:
            raise ForbiddenError(f"this key may not read edition {refused[0]!r}", "edition")
        return asked
    return key.editions


def matches(view: Mapping[str, Any], query: ListQuery, editions: frozenset[str] | None) -> bool:
    """Whether an item's desk view passes the filters (pure)."""
    doc = view["item"]
    if editions is not None and doc.get("edition") not in editions:
        return False
    if query.statuses is not None and view["status"] not in query.statuses:
        return False
    if query.category is not None and query.category not in (doc.get("categories") or ()):
        return False
    if query.region is not None and query.region not in (doc.get("regions") or ()):
        return False
    return query.q is None or query.q in str(doc.get("headline", "")).casefold()


async def find_items(
    redis: Any, keys: Any, query: ListQuery, editions: frozenset[str] | None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of matching views, newest first, and the cursor of the next page (or None)."""
    top: Any = query.until_ms if query.until_ms is not None else "+inf"
    if query.cursor is not None:
        top = query.cursor[0] if top == "+inf" else min(top, query.cursor[0])
    bottom: Any = query.since_ms if query.since_ms is not None else "-inf"
    found: list[dict[str, Any]] = []
    scanned, offset = 0, 0
    last: tuple[int, str] | None = None
    while scanned < SCAN_MAX:
        batch = await redis.zrevrangebyscore(
            keys.items_index, top, bottom, start=offset, num=_BATCH, withscores=True
        )
        if not batch:
            return found, None
        offset += len(batch)
        entries = [(m.decode(), int(s)) for m, s in batch]
        if query.cursor is not None:
            # Ties on the creation time are ordered by id (descending): skip those already given.
            c_score, c_id = query.cursor
            entries = [(i, s) for i, s in entries if s < c_score or i < c_id]
        async with redis.pipeline(transaction=False) as pipe:
            for item_id, _ in entries:
                pipe.hgetall(keys.item(item_id))
            raws = await pipe.execute()
        for (item_id, score), raw in zip(entries, raws, strict=True):
            scanned += 1
            last = (score, item_id)
            if raw and matches(view := desk_view(item_id, raw), query, editions):
                found.append(view)
                if len(found) == query.limit:
                    return found, encode_cursor(score, item_id)
            if scanned >= SCAN_MAX:
                break
        if scanned < SCAN_MAX and len(batch) < _BATCH:
            return found, None
    # The scan bound was reached: go on from the last entry read.
    return found, encode_cursor(*last) if last else None


async def list_items(request: Request) -> Response:
    """The desk's listing: filters, newest first, ``next_cursor`` for the following page."""
    state = request.state
    key = authenticate(request)
    query = parse_query(request.query_params, tuple(state.settings.editions))
    editions = readable_editions(key, query.editions)
    items, cursor = await find_items(state.redis, state.keys, query, editions)
    return JSONResponse({"items": items, "next_cursor": cursor})


routes = [Route("/v1/items", list_items, methods=["GET"])]

"""``GET /v1/feeds/{edition}.{rss|atom|json}``: partner feeds from the hub's live mirror.

Public like the stream, with the stream's filters as query parameters. Read
from the process's in-memory mirror of the ticker (the hub), so a feed poll
costs no Redis round trip; ``ETag`` (a hash of the body) and
``Last-Modified`` (the newest item's last change) answer repeat polls 304.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ticker.apidoc import errors, path_param, query_param
from ticker.exceptions import NotFoundError, UnavailableError
from ticker.filters import Filter
from ticker.stream.feeds import FORMATS, build_feed, feed_items, http_date

__all__ = ["FEED_CACHE", "openapi_paths", "routes"]

# Partners poll; a short shared cache spares the service a poll per reader.
FEED_CACHE = "public, max-age=30"


def _fresh(request: Request, etag: str, last_modified: str | None) -> bool:
    """True when the client's copy is current (If-None-Match wins over If-Modified-Since)."""
    if match := request.headers.get("if-none-match"):
        tags = [t.strip().removeprefix("W/") for t in match.split(",")]
        return etag in tags or "*" in tags
    since = request.headers.get("if-modified-since")
    if since and last_modified:
        try:
            return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


async def feed(request: Request) -> Response:
    """One edition's live items as a feed, through the stream's filter parameters."""
    state = request.state
    edition, fmt = request.path_params["edition"], request.path_params["fmt"]
    if fmt not in FORMATS:
        raise NotFoundError(f"no feed format {fmt!r}; use rss, atom or json", "format")
    if edition not in state.settings.editions:
        raise NotFoundError(f"no edition {edition!r}", "edition")
    params = {k: request.query_params.getlist(k) for k in request.query_params}
    params.pop("edition", None)  # the path names the edition
    f = Filter.parse(params, state.settings.editions)
    if not state.hub.ready.is_set():
        raise UnavailableError("the ticker is loading")
    items = feed_items(state.hub.items.values(), edition, f)
    base = str(request.base_url).rstrip("/")
    rendered = build_feed(
        fmt,
        edition,
        items,
        feed_url=str(request.url),
        home_url=base + "/",
    )
    modified = http_date(rendered.last_modified) if rendered.last_modified else None
    headers = {
        "ETag": rendered.etag,
        "Cache-Control": FEED_CACHE,
        "Vary": "Accept-Encoding",
        **({"Last-Modified": modified} if modified else {}),
    }
    if _fresh(request, rendered.etag, modified):
        return Response(status_code=304, headers=headers)
    return Response(rendered.body, headers=headers, media_type=rendered.content_type)


routes = [
    Route("/v1/feeds/{edition}.{fmt}", feed, methods=["GET"], name="feed"),
]


def openapi_paths(editions: tuple[str, ...]) -> dict[str, Any]:
    """The feed route's OpenAPI path."""
    params = [
        path_param("edition", {"type": "string", "enum": list(editions)}),
        path_param("fmt", {"type": "string", "enum": list(FORMATS)}),
        *(query_param(n) for n in ("category", "region", "max_urgency")),
    ]
    return {
        "/v1/feeds/{edition}.{fmt}": {
            "get": {
                "summary": "An edition's live items as RSS 2.0, Atom or JSON Feed (public)",
                "security": [],
                "parameters": params,
                "responses": {
                    "200": {
                        "description": "the feed",
                        "content": {ctype.split(";")[0]: {} for ctype in FORMATS.values()},
                    },
                    "304": {"description": "not modified (ETag or Last-Modified)"},
                    **errors(400, 404, 503, description="error naming the field"),
                },
            }
        }
    }

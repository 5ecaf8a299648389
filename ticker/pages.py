"""Pages and static assets: the demo page (/), the editor console (/console), /embed.js.

The versioned, minified widget (/widget/<version>/ticker.min.js) lives in ticker.widget_asset;
the demo page loads it and shows the snippet for it with the origin the page was served from.

Pages carry a strict Content-Security-Policy (scripts and styles from this origin only, nothing
inline), so even a headline that slipped through as markup could not run. The widget script is
public and cacheable for a short time, since its URL is not versioned.
"""

from __future__ import annotations

import hashlib
import html
import re
from functools import lru_cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ticker import widget_asset

__all__ = ["CONTENT_SECURITY_POLICY", "routes"]

_HERE = Path(__file__).parent
STATIC_DIR = _HERE / "static"
TEMPLATES_DIR = _HERE / "templates"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# The embed script is loaded by other sites: short cache (the URL is not versioned), readable
# cross-origin (a <script crossorigin integrity=...> tag needs CORS), loadable under COEP.
EMBED_CACHE = "public, max-age=300, stale-while-revalidate=86400"
STATIC_CACHE = "public, max-age=3600"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}
_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(js|css|svg)$")
DEFAULT_EDITIONS = ("en", "ar", "es")


@lru_cache(maxsize=32)
def _load(path: Path, mtime_ns: int, size: int) -> tuple[bytes, str]:
    # Keyed on mtime and size, so an edited file is served fresh without a restart.
    body = path.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _asset(path: Path) -> tuple[bytes, str] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return _load(path, stat.st_mtime_ns, stat.st_size)


def _not_modified(request: Request, etag: str) -> bool:
    candidates = request.headers.get("if-none-match", "")
    return any(tag.strip().removeprefix("W/") == etag for tag in candidates.split(",")) or (
        candidates.strip() == "*"
    )


def _file_response(request: Request, path: Path, headers: dict[str, str]) -> Response:
    asset = _asset(path)
    if asset is None:
        return Response("Not Found", status_code=404, media_type="text/plain")
    body, etag = asset
    headers = {**headers, "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, headers=headers, media_type=CONTENT_TYPES[path.suffix])


def _editions(request: Request) -> tuple[str, ...]:
    # The app's lifespan puts its Settings in request.state; a bare pages app has none.
    settings = getattr(request.state, "settings", None)
    editions = getattr(settings, "editions", None)
    return tuple(editions) if editions else DEFAULT_EDITIONS


def _origin(request: Request) -> str:
    # As the reader's browser reached us (uvicorn applies trusted proxy headers to the scope).
    return str(request.base_url).rstrip("/")


def _page(request: Request, name: str, cache: str) -> Response:
    asset = _asset(TEMPLATES_DIR / name)
    if asset is None:
        return Response("Not Found", status_code=404, media_type="text/plain")
    # The only substitutions, each escaped: configured editions (a data attribute), and this
    # origin and the widget's versioned path (a script src and the copyable snippet).
    values = {
        "editions": ",".join(_editions(request)),
        "origin": _origin(request),
        "widget": widget_asset.widget_path(),
    }
    text = asset[0].decode("utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", html.escape(value, quote=True))
    return Response(
        text,
        media_type="text/html; charset=utf-8",
        headers={**PAGE_HEADERS, "Cache-Control": cache},
    )


async def demo_page(request: Request) -> Response:
    """The demo article page with a ticker per edition."""
    return _page(request, "index.html", "no-cache")


async def console_page(request: Request) -> Response:
    """The editor console; never cached, since editors work with keys on it."""
    return _page(request, "console.html", "no-store")


async def embed_js(request: Request) -> Response:
    """The widget script, for any site to load."""
    return _file_response(
        request,
        STATIC_DIR / "embed.js",
        {
            "Cache-Control": EMBED_CACHE,
            "Access-Control-Allow-Origin": "*",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


async def static_file(request: Request) -> Response:
    """Files of ticker/static by plain name; anything else, including traversal, is a 404."""
    name = request.path_params["name"]
    if not _STATIC_NAME.match(name):
        return Response("Not Found", status_code=404, media_type="text/plain")
    return _file_response(request, STATIC_DIR / name, {"Cache-Control": STATIC_CACHE})


routes: list[Route] = [
    Route("/", demo_page, methods=["GET"], name="demo"),
    Route("/console", console_page, methods=["GET"], name="console"),
    Route("/embed.js", embed_js, methods=["GET"], name="embed_js"),
    Route("/static/{name}", static_file, methods=["GET"], name="static"),
    *widget_asset.routes,
]

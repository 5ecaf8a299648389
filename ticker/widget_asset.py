"""The widget as a versioned asset: `/widget/<version>/ticker.min.js`, cached for a year.

The version is a hash of the served bytes, so a changed widget gets a new URL and a cached copy
is never stale: the response is `immutable`. The file is minified on first request with rjsmin
(a small, long-kept pure minifier; it keeps the `/*!` licence header and template literals
intact); without rjsmin installed it is served as written. `/embed.js` keeps serving the
unversioned source with a short cache for pages that already embed it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["WIDGET_CACHE", "WidgetBuild", "current_build", "minify", "routes", "widget_path"]

SOURCE = Path(__file__).parent / "static" / "embed.js"
WIDGET_CACHE = "public, max-age=31536000, immutable"
_VERSION_CHARS = 16


@dataclass(frozen=True)
class WidgetBuild:
    """The minified widget, its version (a content hash) and its ETag."""

    body: bytes
    version: str

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    @property
    def path(self) -> str:
        return f"/widget/{self.version}/ticker.min.js"


def minify(source: str) -> str:
    """The script minified by rjsmin, or as it is when rjsmin is not installed."""
    try:
        import rjsmin
    except ImportError:  # pragma: no cover - rjsmin is a dependency; this keeps a bare copy working
        return source
    return str(rjsmin.jsmin(source, keep_bang_comments=True))


@lru_cache(maxsize=4)
def _build(path: Path, mtime_ns: int, size: int) -> WidgetBuild:
    # Keyed on mtime and size, so an edited source gets a new build and URL without a restart.
    body = minify(path.read_text(encoding="utf-8")).encode("utf-8")
    return WidgetBuild(body, hashlib.sha256(body).hexdigest()[:_VERSION_CHARS])


def current_build() -> WidgetBuild:
    """The build of the widget source as it is on disk now."""
    stat = SOURCE.stat()
    return _build(SOURCE, stat.st_mtime_ns, stat.st_size)


def widget_path() -> str:
    """The versioned path of the current build, for pages and snippets."""
    return current_build().path


async def widget_js(request: Request) -> Response:
    """The minified widget at its versioned URL; any other version is a 404, never stale."""
    build = current_build()
    if request.path_params["version"] != build.version:
        return Response(
            "Not Found",
            status_code=404,
            media_type="text/plain",
            headers={"Cache-Control": "no-store"},
        )
    headers = {
        "Cache-Control": WIDGET_CACHE,
        "ETag": build.etag,
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if build.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(build.body, headers=headers, media_type="text/javascript; charset=utf-8")


routes: list[Route] = [
    Route("/widget/{version}/ticker.min.js", widget_js, methods=["GET"], name="widget_js"),
]

"""The versioned widget build: minified, immutable, CORS-readable, and the snippet that names
it with the origin the page was served from."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from ticker import pages, widget_asset


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=Starlette(routes=pages.routes))
    async with httpx.AsyncClient(transport=transport, base_url="https://news.test:8443") as c:
        yield c


async def test_versioned_build_is_immutable_minified_javascript(client: httpx.AsyncClient) -> None:
    """The build is served at its content-hash URL for a year, readable cross-origin, smaller
    than the source, with its licence header and a working ETag."""
    build = widget_asset.current_build()
    assert re.fullmatch(r"/widget/[0-9a-f]{16}/ticker\.min\.js", build.path)
    r = await client.get(build.path)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    source = widget_asset.SOURCE.read_bytes()
    assert len(r.content) < 0.8 * len(source)
    assert r.text.startswith("/*!") and 'customElements.define("breaking-ticker"' in r.text
    again = await client.get(build.path, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_other_versions_are_not_found(client: httpx.AsyncClient) -> None:
    """A version that is not the current build is a 404 that no cache keeps."""
    r = await client.get("/widget/0123456789abcdef/ticker.min.js")
    assert r.status_code == 404
    assert r.headers["cache-control"] == "no-store"


async def test_demo_snippet_names_this_origin_and_build(client: httpx.AsyncClient) -> None:
    """The demo page's copyable snippet uses the origin it was served from, not a placeholder."""
    text = (await client.get("/")).text
    path = widget_asset.widget_path()
    assert f'&lt;script src="https://news.test:8443{path}" defer&gt;' in text
    assert "ticker.example" not in text and "{{" not in text


def test_minify_keeps_template_literals() -> None:
    """The minifier leaves the stylesheet's template literal as written."""
    source = "const CSS = `\n  .a { color: red; }\n  /* x */\n`;\nconst  b = 1 ;"
    out = widget_asset.minify(source)
    assert "`\n  .a { color: red; }\n  /* x */\n`" in out and "const b=1;" in out

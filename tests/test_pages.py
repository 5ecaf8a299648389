"""Pages and assets: content types, caching, CSP and security headers, no inline script."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from ticker import pages, widget_asset
from ticker.config import Settings

STATIC = Path(pages.__file__).parent / "static"


def _client(settings: Settings | None = None) -> httpx.AsyncClient:
    app = Starlette(routes=pages.routes)

    async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
        # What the service's lifespan provides: its Settings in the request state.
        if settings is not None:
            scope["state"] = {"settings": settings}
        await app(scope, receive, send)

    transport = httpx.ASGITransport(app=with_state)
    return httpx.AsyncClient(transport=transport, base_url="http://ticker.test")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with _client() as c:
        yield c


class _Scripts(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would block."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.srcs: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self.inline += [f"{tag} {n}" for n in names if n.startswith("on") or n == "style"]
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script":
            self._in_script = True
            if names.get("src"):
                self.srcs.append(names["src"] or "")
            else:
                self.inline.append("<script> without src")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("script body")


@pytest.mark.parametrize(("path", "cache"), [("/", "no-cache"), ("/console", "no-store")])
async def test_pages_carry_a_strict_csp(client: httpx.AsyncClient, path: str, cache: str) -> None:
    """Each page is HTML with a CSP allowing only this origin and the usual hardening headers."""
    r = await client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    csp = r.headers["content-security-policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"]
    assert r.headers["cache-control"] == cache


@pytest.mark.parametrize("path", ["/", "/console"])
async def test_pages_have_no_inline_script_or_style(client: httpx.AsyncClient, path: str) -> None:
    """No inline script, handler or style attribute: everything the CSP allows comes from files."""
    parser = _Scripts()
    parser.feed((await client.get(path)).text)
    assert parser.inline == []
    # The demo page loads the versioned build; the console the plain script.
    assert ("/embed.js" if path == "/console" else widget_asset.widget_path()) in parser.srcs


async def test_console_lists_configured_editions() -> None:
    """The console gets the configured editions through a data attribute, escaped."""
    async with _client(Settings(editions=("en", 'x"><b>'))) as client:
        text = (await client.get("/console")).text
    assert 'data-editions="en,x&quot;&gt;&lt;b&gt;"' in text
    assert "{{" not in text


async def test_embed_js_is_public_cacheable_javascript(client: httpx.AsyncClient) -> None:
    """The widget script is JavaScript, cacheable, loadable cross-origin, with a working ETag."""
    r = await client.get("/embed.js")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["cache-control"].startswith("public, max-age=")
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert 'customElements.define("breaking-ticker"' in r.text
    again = await client.get("/embed.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("console.js", "text/javascript; charset=utf-8"), ("pages.css", "text/css; charset=utf-8")],
)
async def test_static_files(client: httpx.AsyncClient, name: str, content_type: str) -> None:
    """Static assets are served with their type and a cache lifetime."""
    r = await client.get(f"/static/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"] == content_type
    assert r.headers["cache-control"] == "public, max-age=3600"


@pytest.mark.parametrize(
    "path", ["/static/missing.js", "/static/..%2Fpages.py", "/static/.hidden.js", "/static/x.py"]
)
async def test_static_refuses_anything_else(client: httpx.AsyncClient, path: str) -> None:
    """Unknown names, traversal and other extensions are 404s."""
    assert (await client.get(path)).status_code == 404


def test_scripts_never_parse_data_as_html() -> None:
    """No HTML-parsing sink appears in the front-end code: headlines can only become text."""
    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function"
    )
    for script in STATIC.glob("*.js"):
        assert not sinks.search(script.read_text(encoding="utf-8")), script.name

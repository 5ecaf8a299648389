"""Console single sign-on through an OpenID Connect provider (a local fake one)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from tests.browser.fake_stream import serve_app
from tests.fake_oidc import FakeProvider
from tests.support.stack import Stack, running_stack
from ticker.config import Settings
from ticker.desk import accounts


@pytest.fixture
async def sso(settings: Settings) -> AsyncIterator[tuple[Stack, FakeProvider]]:
    provider = FakeProvider()
    async with serve_app(provider.app()) as port:
        provider.issuer = f"http://127.0.0.1:{port}"
        cfg = replace(
            settings,
            desk_oidc_issuer=provider.issuer,
            desk_oidc_client_id=provider.client_id,
            desk_oidc_client_secret=provider.client_secret,
        )
        async with running_stack(cfg) as stack:
            await accounts.add_user(
                stack.redis,
                stack.keys,
                "alice",
                "a long password here",
                "editor",
                ["ar"],
                cfg.editions,
            )
            yield stack, provider


async def round_trip(client: httpx.AsyncClient) -> httpx.Response:
    """Start, pass the provider, and come back: the callback's answer."""
    start = await client.get("/desk/oidc/start")
    assert start.status_code == 302, start.text
    at_provider = await client.get(start.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    return await client.get(at_provider.headers["location"])


async def test_sso_opens_a_session_for_the_account(sso: tuple[Stack, FakeProvider]) -> None:
    """A verified ID token naming an account opens a desk session with that account's role
    and editions, behind the same strict cookie."""
    stack, _ = sso
    async with httpx.AsyncClient(base_url=stack.base) as client:
        assert (await client.get("/desk/sign-in-options")).json() == {"oidc": True}
        back = await round_trip(client)
        assert back.status_code == 303 and back.headers["location"] == "/console"
        assert "samesite=strict" in back.headers["set-cookie"].lower()
        me = (await client.get("/desk/me")).json()
        assert (me["name"], me["role"], me["editions"]) == ("alice", "editor", ["ar"])
        replay = await client.get(back.request.url)  # the same code and state again
        assert replay.status_code == 400 and replay.json()["error"]["field"] == "state"


async def test_sso_refuses_unknown_accounts_forged_tokens_and_foreign_state(
    sso: tuple[Stack, FakeProvider],
) -> None:
    """No session for a name without an account (403), a token the provider's keys do not
    verify (401), or a callback whose state is not this browser's (400)."""
    stack, provider = sso
    provider.user = "mallory"
    async with httpx.AsyncClient(base_url=stack.base) as client:
        r = await round_trip(client)
        assert r.status_code == 403 and "ticker_desk=" not in r.headers.get("set-cookie", "")
    provider.user, provider.forge = "alice", True
    async with httpx.AsyncClient(base_url=stack.base) as client:
        r = await round_trip(client)
        assert r.status_code == 401 and r.json()["error"]["field"] == "id_token"
    provider.forge = False
    async with httpx.AsyncClient(base_url=stack.base) as client:
        start = await client.get("/desk/oidc/start")
        at_provider = await client.get(start.headers["location"])
        client.cookies.clear()
        r = await client.get(at_provider.headers["location"])
        assert r.status_code == 400 and r.json()["error"]["field"] == "state"
        assert (await client.get("/desk/me")).status_code == 401


async def test_sso_off_by_default(stack: Stack) -> None:
    """Without an issuer the sign-in options say so and the SSO routes are 404."""
    assert (await stack.http.get("/desk/sign-in-options")).json() == {"oidc": False}
    assert (await stack.http.get("/desk/oidc/start")).status_code == 404

"""Editor sign-in for the console: accounts, sessions, CSRF, lockout and the desk feed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.helpers import wait_for
from tests.support.stack import Stack
from ticker.client.sseparse import SSEParser
from ticker.config import Settings
from ticker.desk import accounts

PASSWORD = "correct horse battery"


async def add(
    stack: Stack, name: str, role: str = "editor", editions: list[str] | None = None
) -> None:
    await accounts.add_user(
        stack.redis, stack.keys, name, PASSWORD, role, editions, stack.settings.editions
    )


@contextlib.asynccontextmanager
async def session(stack: Stack, name: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A signed-in client and its CSRF token, closed afterwards."""
    client, csrf = await signed_in(stack, name)
    try:
        yield client, csrf
    finally:
        await client.aclose()


async def signed_in(stack: Stack, name: str) -> tuple[httpx.AsyncClient, str]:
    """A client holding the session cookie, and the session's CSRF token."""
    client = httpx.AsyncClient(base_url=stack.base, timeout=10)
    r = await client.post("/desk/login", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return client, r.json()["csrf_token"]


@pytest.mark.timeout(180)  # eight CLI processes, each importing the service
def test_cli_manages_accounts(settings: Settings) -> None:
    """`ticker users` adds, lists, disables and resets accounts, never echoing a password."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TICKER_REDIS_URL": settings.redis_url, "PYTHONPATH": str(root)}

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ticker", "users", *args],
            input=stdin,
            cwd=root,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    added = run(
        "add",
        "amal",
        "--role",
        "editor",
        "--editions",
        "ar",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stderr
    assert PASSWORD not in added.stdout
    assert run("list").stdout.split("\n")[0].split("\t") == ["amal", "editor", "ar", "active"]
    again = run("add", "amal", "--password-stdin", stdin=PASSWORD + "\n")
    assert again.returncode == 2 and "exists" in again.stderr
    short = run("add", "bob", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "password" in short.stderr
    assert run("disable", "amal").returncode == 0
    assert "disabled" in run("list").stdout
    assert run("reset", "amal", "--password-stdin", stdin="another long password\n").returncode == 0
    assert run("disable", "nobody").returncode == 2


async def test_sign_in_sets_a_strict_session_cookie(stack: Stack) -> None:
    """A right password sets an HttpOnly SameSite=Strict cookie; a wrong one is a 401 with none."""
    await add(stack, "alice")
    async with httpx.AsyncClient(base_url=stack.base) as client:
        bad = await client.post("/desk/login", json={"name": "alice", "password": "wrong one!"})
        assert bad.status_code == 401 and bad.json()["error"]["field"] == "password"
        assert "set-cookie" not in bad.headers
        unknown = await client.post("/desk/login", json={"name": "nobody", "password": PASSWORD})
        assert unknown.status_code == 401
        missing = await client.post("/desk/login", json={"name": "alice"})
        assert missing.status_code == 422 and missing.json()["error"]["field"] == "password"
        r = await client.post("/desk/login", json={"name": "alice", "password": PASSWORD})
        assert r.status_code == 200
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=" in cookie
        me = (await client.get("/desk/me")).json()
        assert me["name"] == "alice" and me["role"] == "editor" and me["csrf_token"]


async def test_csrf_token_required_for_changes(stack: Stack) -> None:
    """A cookie request without the CSRF token is a 403 and stores nothing; with it, the item
    is posted and its history names the editor."""
    await add(stack, "alice")
    async with session(stack, "alice") as (client, csrf):
        body = {"headline": "Dam breaks upstream of the city", "edition": "en"}
        r = await client.post("/v1/items", json=body)
        assert r.status_code == 403 and r.json()["error"]["field"] == "X-CSRF-Token"
        r = await client.post("/v1/items", json=body, headers={"X-CSRF-Token": "forged"})
        assert r.status_code == 403
        assert await stack.redis.zcard(stack.keys.items_index) == 0
        r = await client.post(
            "/v1/items", json=body, headers={"X-CSRF-Token": csrf, "Prefer": "wait=5"}
        )
        assert r.status_code == 200 and r.json()["status"] == "published"
        item_id = r.json()["id"]
        r = await client.patch(f"/v1/items/{item_id}", json={"urgency": 2})
        assert r.status_code == 403
        history = (await client.get(f"/v1/items/{item_id}/history")).json()["history"]
        assert [e["by"] for e in history] == ["user:alice", "worker"]
        assert (await client.post("/desk/logout")).status_code == 403  # sign-out needs it too


async def test_forged_or_ended_session_is_refused(stack: Stack) -> None:
    """A forged cookie, an ended session and a disabled account get 401 naming the session."""
    await add(stack, "alice")
    async with httpx.AsyncClient(base_url=stack.base) as forged:
        forged.cookies.set("ticker_desk", "abc.def")
        r = await forged.get("/v1/items")
        assert r.status_code == 401 and r.json()["error"]["field"] == "session"
    async with session(stack, "alice") as (client, csrf):
        assert (
            await client.post("/desk/logout", headers={"X-CSRF-Token": csrf})
        ).status_code == 204
        client.cookies.clear()
    async with session(stack, "alice") as (client, csrf):
        assert (await client.get("/desk/me")).status_code == 200
        await accounts.set_disabled(stack.redis, stack.keys, "alice", True)
        r = await client.get("/desk/me")
        assert r.status_code == 401 and r.json()["error"]["field"] == "session"
        r = await client.post(
            "/v1/items", json={"headline": "x y", "edition": "en"}, headers={"X-CSRF-Token": csrf}
        )
        assert r.status_code == 401


async def test_logout_ends_the_session_on_the_server(stack: Stack) -> None:
    """After sign-out the old cookie value no longer works, even if a client kept it."""
    await add(stack, "alice")
    async with session(stack, "alice") as (client, csrf):
        kept = client.cookies.get("ticker_desk")
        assert (
            await client.post("/desk/logout", headers={"X-CSRF-Token": csrf})
        ).status_code == 204
    async with httpx.AsyncClient(base_url=stack.base) as thief:
        thief.cookies.set("ticker_desk", kept or "")
        assert (await thief.get("/desk/me")).status_code == 401


async def test_repeated_failures_lock_the_account(stack: Stack) -> None:
    """After five wrong passwords even the right one is refused (429) for the lockout window."""
    await add(stack, "alice")
    async with httpx.AsyncClient(base_url=stack.base) as client:
        for _ in range(5):
            r = await client.post("/desk/login", json={"name": "alice", "password": "guess guess"})
            assert r.status_code == 401
        r = await client.post("/desk/login", json={"name": "alice", "password": PASSWORD})
        assert r.status_code == 429 and r.json()["error"]["code"] == "locked"
        assert 0 < int(r.headers["retry-after"]) <= stack.settings.desk_lockout_seconds
        assert "set-cookie" not in r.headers


async def test_edition_limited_editor(stack: Stack) -> None:
    """An editor limited to ar cannot post to en (403) and lists only ar items."""
    await add(stack, "amal", editions=["ar"])
    await stack.post({"headline": "Quake hits the north", "edition": "en"})
    async with session(stack, "amal") as (client, csrf):
        r = await client.post(
            "/v1/items",
            json={"headline": "Quake hits the north", "edition": "en"},
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status_code == 403 and r.json()["error"]["field"] == "edition"
        listed = (await client.get("/v1/items")).json()["items"]
        assert listed == []


async def feed_events(client: httpx.AsyncClient, out: list[tuple[str, dict]]) -> None:
    parser = SSEParser()
    async with client.stream("GET", "/desk/feed") as response:
        assert response.status_code == 200
        async for chunk in response.aiter_raw():
            for m in parser.feed(chunk):
                out.append((m.event or "message", orjson.loads(m.data)))


async def test_desk_feed_carries_every_status_for_the_editions(stack: Stack) -> None:
    """The desk feed sends a snapshot, then queued and published for en to an all-editions
    editor, nothing of en to an ar-only one, and signed-out when the session ends."""
    await add(stack, "alice")
    await add(stack, "amal", editions=["ar"])
    alice, _ = await signed_in(stack, "alice")
    amal, amal_csrf = await signed_in(stack, "amal")
    seen_alice: list[tuple[str, dict]] = []
    seen_amal: list[tuple[str, dict]] = []
    tasks = [
        asyncio.create_task(feed_events(alice, seen_alice)),
        asyncio.create_task(feed_events(amal, seen_amal)),
    ]
    try:
        await wait_for(lambda: bool(seen_alice) and bool(seen_amal), 5, what="snapshots")
        assert seen_alice[0] == ("snapshot", {"items": [], "editions": None})
        r = await stack.post({"headline": "Strike halts trains nationwide", "edition": "en"})
        item_id = r.json()["id"]
        await wait_for(
            lambda: (
                [d["status"] for e, d in seen_alice if e == "status"] == ["queued", "published"]
            ),
            5,
            what="queued then published on the desk feed",
        )
        assert all(d["id"] == item_id for e, d in seen_alice if e == "status")
        assert [e for e, _ in seen_amal] == ["snapshot"]
        await amal.post("/desk/logout", headers={"X-CSRF-Token": amal_csrf})
        await wait_for(lambda: seen_amal[-1][0] == "signed-out", 5, what="signed-out event")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await alice.aclose()
        await amal.aclose()

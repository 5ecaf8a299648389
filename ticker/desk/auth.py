"""Console sign-in: server-side sessions in Redis behind a signed cookie, CSRF, lockout.

The cookie (``ticker_desk``) holds only a random session id signed with itsdangerous; it is
HttpOnly, SameSite=Strict, Secure over HTTPS, and expires with the session. The session
itself (user, CSRF token) lives in Redis with the same expiry, so signing out, disabling an
account or resetting its password ends it at once on every API process.

Every state-changing request made with the cookie must carry the session's CSRF token in
``X-CSRF-Token`` (synchronizer token; the page gets it from ``GET /desk/me``): without it
the answer is 403 and nothing changes. Requests with an API key are not cookie-based and
need no token.
"""

from __future__ import annotations

import hmac
import secrets
import time
from http.cookies import SimpleCookie
from typing import Any

import orjson
from itsdangerous import BadSignature, Signer
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ticker.constants import Keys
from ticker.desk.accounts import Account, check_password, get_account, principal_of
from ticker.exceptions import AuthError, ValidationError
from ticker.intake.api import read_json
from ticker.middleware.conncap import client_ip
from ticker.middleware.errors import error_body

__all__ = ["COOKIE", "DeskSessions", "desk_session_middleware", "routes"]

COOKIE = "ticker_desk"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths where the cookie counts: the items API, and the desk's own routes.
COOKIE_PATHS = ("/v1/items", "/desk/")


def _cookie(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed header is no session, not an error
                return None
            if COOKIE in jar:
                return jar[COOKIE].value
    return None


class DeskSessions:
    """Session storage and cookie signing for one deployment."""

    def __init__(self, redis: Any, keys: Keys, settings: Any) -> None:
        self.redis, self.keys, self.settings = redis, keys, settings
        self._signer: Signer | None = None

    async def signer(self) -> Signer:
        if self._signer is None:
            secret = self.settings.desk_secret
            if not secret:
                # One secret for every process: the first to start writes it.
                await self.redis.set(self.keys.desk_secret, secrets.token_urlsafe(32), nx=True)
                secret = (await self.redis.get(self.keys.desk_secret)).decode()
            self._signer = Signer(secret, salt="ticker-desk-session")
        return self._signer

    async def open(self, account: Account) -> tuple[str, dict[str, Any]]:
        """A new session: the signed cookie value and what the page needs to know."""
        sid = secrets.token_urlsafe(32)
        ttl = self.settings.desk_session_seconds
        session = {
            "user": account.name,
            "csrf": secrets.token_urlsafe(32),
            "expires": str(int(time.time()) + ttl),
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.desk_session(sid), mapping=session)
            pipe.expire(self.keys.desk_session(sid), ttl)
            pipe.sadd(self.keys.user_sessions(account.name), sid)
            pipe.expire(self.keys.user_sessions(account.name), ttl)
            await pipe.execute()
        cookie = (await self.signer()).sign(sid).decode()
        return cookie, self.describe(account, session)

    @staticmethod
    def describe(account: Account, session: dict[str, str]) -> dict[str, Any]:
        return {
            **account.public(),
            "principal": principal_of(account).name,
            "csrf_token": session["csrf"],
            "expires_at": int(session["expires"]),
        }

    async def load(self, cookie: str) -> tuple[str, dict[str, str], Account] | None:
        """The session id, session and (enabled) account a cookie names, or None."""
        try:
            sid = (await self.signer()).unsign(cookie).decode()
        except (BadSignature, UnicodeDecodeError):
            return None
        raw = await self.redis.hgetall(self.keys.desk_session(sid))
        if not raw:
            return None
        session = {k.decode(): v.decode() for k, v in raw.items()}
        account = await get_account(self.redis, self.keys, session.get("user", ""))
        if account is None or account.disabled:
            return None
        return sid, session, account

    async def close(self, sid: str, user: str) -> None:
        await self.redis.delete(self.keys.desk_session(sid))
        await self.redis.srem(self.keys.user_sessions(user), sid)

    async def alive(self, sid: str) -> bool:
        return bool(await self.redis.exists(self.keys.desk_session(sid)))

    # -- lockout ----------------------------------------------------------------------

    async def locked_for(self, name: str, address: str) -> int:
        """Seconds until sign-in is allowed again for this account or address (0: now)."""
        s = self.settings
        checks = [
            (self.keys.login_failures("account", name), s.desk_login_failures_per_account),
            (self.keys.login_failures("address", address), s.desk_login_failures_per_address),
        ]
        wait = 0
        for key, limit in checks:
            count = await self.redis.get(key)
            if limit > 0 and count is not None and int(count) >= limit:
                wait = max(wait, int(await self.redis.ttl(key)), 1)
        return wait

    async def failed(self, name: str, address: str) -> None:
        window = self.settings.desk_lockout_seconds
        for key in (
            self.keys.login_failures("account", name),
            self.keys.login_failures("address", address),
        ):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window, nx=True)
                await pipe.execute()


def _sessions(request: Request) -> DeskSessions:
    return request.state.desk  # type: ignore[no-any-return]


def _set_cookie(request: Request, response: Response, value: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def login(request: Request) -> Response:
    """Sign in with a name and password; sets the session cookie."""
    body = await read_json(request, 4096)
    if not isinstance(body, dict):
        raise ValidationError("the body must be an object with name and password", "body")
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not 1 <= len(name) <= 40:
        raise ValidationError("name is required", "name")
    if not isinstance(password, str) or not 1 <= len(password) <= 1024:
        raise ValidationError("password is required", "password")
    sessions = _sessions(request)
    address = client_ip(request.scope)
    name = name.strip().lower()
    wait = await sessions.locked_for(name, address)
    if wait:
        message = f"too many failed sign-ins; try again in {wait} s"
        return JSONResponse(
            error_body("locked", message, "password"), 429, {"Retry-After": str(wait)}
        )
    account = await check_password(sessions.redis, sessions.keys, name, password)
    if account is None:
        await sessions.failed(name, address)
        raise AuthError("wrong name or password, or the account is disabled", "password")
    await sessions.redis.delete(sessions.keys.login_failures("account", name))
    cookie, me = await sessions.open(account)
    response = JSONResponse(me, headers={"Cache-Control": "no-store"})
    _set_cookie(request, response, cookie, sessions.settings.desk_session_seconds)
    request.scope["ticker.principal"] = f"user:{account.name}"
    return response


async def me(request: Request) -> Response:
    """Who is signed in, their scopes and editions, and the CSRF token for their requests."""
    found = request.scope.get("ticker.desk_session")
    if found is None:
        raise AuthError(request.scope.get("ticker.desk_error") or "not signed in", "session")
    _sid, session, account = found
    return JSONResponse(
        DeskSessions.describe(account, session), headers={"Cache-Control": "no-store"}
    )


async def logout(request: Request) -> Response:
    """Sign out: the session ends on the server, the cookie is cleared."""
    found = request.scope.get("ticker.desk_session")
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    if found is not None:
        await _sessions(request).close(found[0], found[2].name)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


class DeskSessionMiddleware:
    """Turns a valid session cookie into the request's principal, and enforces CSRF."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Signing in needs no session (and no token: SameSite=Strict and the JSON body
        # already keep other sites from posting it).
        path = scope["path"] if scope["type"] == "http" else ""
        if not path.startswith(COOKIE_PATHS) or path == "/desk/login":
            await self.app(scope, receive, send)
            return
        cookie = _cookie(scope)
        sessions: DeskSessions | None = (scope.get("state") or {}).get("desk")
        bearer = any(k == b"authorization" for k, _ in scope["headers"])
        if cookie is None or sessions is None or bearer:
            await self.app(scope, receive, send)
            return
        found = await sessions.load(cookie)
        if found is None:
            scope["ticker.desk_error"] = "the session has ended (expired or signed out); sign in"
            await self.app(scope, receive, send)
            return
        _sid, session, account = found
        if scope["method"] not in SAFE_METHODS:
            token = next((v for k, v in scope["headers"] if k == b"x-csrf-token"), b"")
            if not hmac.compare_digest(token, session["csrf"].encode()):
                await _refuse(send)
                return
        scope["ticker.desk_session"] = found
        scope["ticker.desk_principal"] = principal_of(account)
        scope["ticker.principal"] = f"user:{account.name}"
        await self.app(scope, receive, send)


async def _refuse(send: Send) -> None:
    body = orjson.dumps(
        error_body("csrf", "missing or wrong X-CSRF-Token for this session", "X-CSRF-Token")
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def desk_session_middleware() -> Middleware:
    return Middleware(DeskSessionMiddleware)


routes = [
    Route("/desk/login", login, methods=["POST"]),
    Route("/desk/logout", logout, methods=["POST"]),
    Route("/desk/me", me, methods=["GET"]),
]

"""Optional console sign-in through an OpenID Connect provider (authorization code + PKCE).

``GET /desk/oidc/start`` sends the browser to the provider with a fresh state, nonce and
PKCE challenge (kept in Redis for ten minutes, the state also in a short cookie bound to
this browser). ``GET /desk/oidc/callback`` checks the state, trades the code for tokens,
verifies the ID token (signature against the provider's JWKS, issuer, audience, expiry,
nonce; joserfc, the JOSE library of authlib), and opens the same server-side session as a
password sign-in for the account the ``TICKER_DESK_OIDC_CLAIM`` names. The provider proves
who the editor is; the role and editions stay those of the account here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ticker.desk.accounts import get_account
from ticker.desk.auth import COOKIE
from ticker.exceptions import AuthError, ClientError, ForbiddenError, UnavailableError

__all__ = ["routes"]

STATE_COOKIE = "ticker_desk_oidc"
STATE_TTL = 600
_TIMEOUT = 10.0


def _configured(request: Request) -> Any:
    settings = request.state.settings
    if not settings.desk_oidc_issuer:
        raise ClientError("single sign-on is not configured", None, status=404, code="not_found")
    return settings


def _redirect_uri(request: Request) -> str:
    return str(request.url_for("desk_oidc_callback"))


async def _provider(settings: Any) -> dict[str, Any]:
    """The provider's discovery document (fetched per sign-in: sign-ins are rare)."""
    url = settings.desk_oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT) as http:
            r = await http.get(url)
            r.raise_for_status()
            doc: dict[str, Any] = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise UnavailableError(f"OIDC discovery failed: {exc!r}") from None
    return doc


async def sign_in_options(request: Request) -> Response:
    """What the sign-in form may offer besides a password."""
    return JSONResponse({"oidc": bool(request.state.settings.desk_oidc_issuer)})


async def start(request: Request) -> Response:
    """Send the browser to the provider."""
    settings = _configured(request)
    provider = await _provider(settings)
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    await request.state.redis.set(
        request.state.keys.oidc_state(state),
        orjson.dumps({"nonce": nonce, "verifier": verifier}),
        ex=STATE_TTL,
    )
    query = {
        "response_type": "code",
        "client_id": settings.desk_oidc_client_id,
        "redirect_uri": _redirect_uri(request),
        "scope": "openid profile email",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256",
    }
    response = RedirectResponse(provider["authorization_endpoint"] + "?" + urlencode(query), 302)
    # Lax, not Strict: the provider's redirect back is a cross-site top-level navigation.
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=STATE_TTL,
        path="/desk/oidc",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


async def callback(request: Request) -> Response:
    """Back from the provider: verify, then open a session for the named account."""
    settings = _configured(request)
    state = request.query_params.get("state", "")
    code = request.query_params.get("code", "")
    if "error" in request.query_params:
        raise AuthError("the provider refused the sign-in", "code")
    cookie = request.cookies.get(STATE_COOKIE, "")
    if not state or not cookie or not hmac.compare_digest(state.encode(), cookie.encode()):
        raise ClientError("sign-in state missing or not this browser's; start again", "state")
    pending = await request.state.redis.getdel(request.state.keys.oidc_state(state))
    if pending is None or not code:
        raise ClientError("sign-in state expired or already used; start again", "state")
    flow = orjson.loads(pending)
    provider = await _provider(settings)
    claims = await _verified_claims(request, settings, provider, code, flow)
    name = str(claims.get(settings.desk_oidc_claim, "")).strip().lower()
    sessions = request.state.desk
    account = await get_account(sessions.redis, sessions.keys, name)
    if account is None or account.disabled:
        raise ForbiddenError(f"no enabled desk account for {name!r}", settings.desk_oidc_claim)
    value, _me = await sessions.open(account)
    response = RedirectResponse("/console", 303)
    response.set_cookie(
        COOKIE,
        value,
        max_age=settings.desk_session_seconds,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(STATE_COOKIE, path="/desk/oidc")
    request.scope["ticker.principal"] = f"user:{account.name}"
    return response


async def _verified_claims(
    request: Request, settings: Any, provider: dict[str, Any], code: str, flow: dict[str, str]
) -> dict[str, Any]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": _redirect_uri(request),
        "code_verifier": flow["verifier"],
    }
    auth = (settings.desk_oidc_client_id, settings.desk_oidc_client_secret)
    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT) as http:
            r = await http.post(provider["token_endpoint"], data=form, auth=auth)
            if r.status_code >= 400:
                raise AuthError("the provider did not accept the sign-in code", "code")
            id_token = r.json()["id_token"]
            keys = KeySet.import_key_set((await http.get(provider["jwks_uri"])).json())
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise UnavailableError(f"OIDC token exchange failed: {exc!r}") from None
    try:
        token = jwt.decode(id_token, keys, algorithms=["RS256", "ES256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": settings.desk_oidc_issuer},
            aud={"essential": True, "value": settings.desk_oidc_client_id},
            nonce={"essential": True, "value": flow["nonce"]},
            exp={"essential": True},
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        raise AuthError(f"the ID token did not verify: {exc}", "id_token") from None
    return dict(token.claims)


routes = [
    Route("/desk/sign-in-options", sign_in_options, methods=["GET"]),
    Route("/desk/oidc/start", start, methods=["GET"]),
    Route("/desk/oidc/callback", callback, methods=["GET"], name="desk_oidc_callback"),
]

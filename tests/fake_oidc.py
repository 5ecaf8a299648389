"""A local fake OpenID Connect provider for the console's single sign-on tests.

It does what a real provider does on the code flow (discovery, authorize with PKCE S256,
token endpoint with client authentication, JWKS, RS256 ID tokens) and signs in whoever
``user`` names, without a login page of its own.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

__all__ = ["FakeProvider"]


@dataclass
class FakeProvider:
    client_id: str = "ticker-desk"
    client_secret: str = "fake-provider-secret"
    user: str = "alice"
    issuer: str = ""
    forge: bool = False  # sign ID tokens with a key the JWKS does not hold
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    key: Any = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}))
    other: Any = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/jwks", self.jwks),
            ]
        )

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token",
                "jwks_uri": self.issuer + "/jwks",
            }
        )

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id or q.get("code_challenge_method") != "S256":
            return JSONResponse({"error": "invalid_request"}, 400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "challenge": q["code_challenge"],
            "nonce": q["nonce"],
            "redirect_uri": q["redirect_uri"],
        }
        query = urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(q["redirect_uri"] + "?" + query, 302)

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {basic}":
            return JSONResponse({"error": "invalid_client"}, 401)
        grant = self.codes.pop(str(form.get("code")), None)
        verifier = str(form.get("code_verifier", ""))
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        if grant is None or challenge != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant"}, 400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, 400)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "sub-" + self.user,
            "aud": self.client_id,
            "nonce": grant["nonce"],
            "iat": now,
            "exp": now + 300,
            "preferred_username": self.user,
        }
        key = self.other if self.forge else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
        return JSONResponse({"access_token": "at", "token_type": "Bearer", "id_token": id_token})

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

"""A fake Web Push service on loopback that checks what a real one would.

It speaks HTTP/2 over TLS (hypercorn, a self-signed certificate for
localhost), and for every message it checks, as FCM or Mozilla's autopush
would: the VAPID ``Authorization`` (the JWT's ES256 signature against the
key it carries, ``aud`` its own origin, ``exp`` within 24 hours, a contact in
``sub``), ``TTL``, ``Urgency``, ``Topic`` and ``Content-Encoding: aes128gcm``;
then it decrypts the payload with the browser's private key and auth secret,
as the browser would. A test scripts the answers per browser (429 with
Retry-After, 5xx, 410) to drive retries and unsubscriptions.

The tests check every message; the benchmark (``bench/webpush.py``) checks
one in ``verify_every`` and counts the rest, so that the fake's own decryption
does not stand in for the sender it measures.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import ipaddress
import os
import re
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece
import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypercorn.asyncio import serve
from hypercorn.config import Config
from py_vapid import Vapid02

__all__ = ["Browser", "FakePushService", "Received", "running_push_service"]

URGENCIES = {"very-low", "low", "normal", "high"}
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One browser's push subscription: its keys stay here, as in a real browser."""

    token: str
    endpoint: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def subscription(self) -> dict[str, Any]:
        """What ``PushSubscription.toJSON()`` gives a page."""
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": _b64(public), "auth": _b64(self.auth)},
        }


@dataclass
class Received:
    """A message the service accepted (2xx), decrypted."""

    token: str
    payload: dict[str, Any]
    headers: dict[str, str]
    http_version: str
    vapid_key: str


@dataclass
class FakePushService:
    origin: str
    ca_file: str
    browsers: dict[str, Browser] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)  # (token, status) answered
    problems: list[str] = field(default_factory=list)  # what a real service would reject
    verify_every: int = 1  # check and decrypt one message in this many (1: all)
    accepted: int = 0  # messages answered 2xx
    first_at: float = 0.0  # monotonic time of the first and the latest 2xx
    last_at: float = 0.0

    def settings(self) -> dict[str, Any]:
        """The Ticker settings that send to this service (loopback, its own certificate)."""
        return {
            "webpush_allowed_hosts": ("localhost",),
            "webpush_allow_private": True,
            "webpush_ca_file": self.ca_file,
        }

    def browser(self, like: Browser | None = None) -> Browser:
        """A new subscription; ``like`` shares another's keys (cheap in bulk)."""
        token = _b64(os.urandom(12))
        b = Browser(token, f"{self.origin}/push/{token}")
        if like is not None:
            b.key, b.auth = like.key, like.auth
        self.browsers[token] = b
        return b

    def for_browser(self, b: Browser) -> list[Received]:
        return [r for r in self.received if r.token == b.token]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"]
                await send({"type": kind + ".complete"})
                if kind == "lifespan.shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status, extra = self._handle(scope, headers, body)
        out = [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": b""})

    def _handle(
        self, scope: dict[str, Any], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str]]:
        token = scope["path"].removeprefix("/push/")
        b = self.browsers.get(token)
        if scope["method"] != "POST" or b is None:
            return 404, {}
        problem = self._check(headers) if self.accepted % self.verify_every == 0 else None
        if problem:
            self.problems.append(problem)
            return 400, {}
        if b.answers:
            status, extra = b.answers.pop(0)
            self.refused.append((token, status))
            return status, extra
        self.accepted += 1
        self.last_at = time.monotonic()
        self.first_at = self.first_at or self.last_at
        if self.accepted % self.verify_every:
            return 201, {}
        try:
            clear = http_ece.decrypt(
                body, private_key=b.key, auth_secret=b.auth, version="aes128gcm"
            )
        except Exception as exc:  # a real service cannot tell; the browser would drop it
            self.problems.append(f"payload does not decrypt: {exc!r}")
            return 400, {}
        key = headers["authorization"].split("k=", 1)[1]
        self.received.append(
            Received(token, orjson.loads(clear), headers, scope["http_version"], key)
        )
        return 201, {"location": f"{self.origin}/message/{len(self.received)}"}

    def _check(self, headers: dict[str, str]) -> str | None:
        if headers.get("content-encoding") != "aes128gcm":
            return "Content-Encoding is not aes128gcm"
        if not headers.get("ttl", "").isdigit():
            return "TTL missing"
        if headers.get("urgency", "normal") not in URGENCIES:
            return f"bad Urgency {headers.get('urgency')!r}"
        if "topic" in headers and not _TOPIC.match(headers["topic"]):
            return f"bad Topic {headers['topic']!r}"
        auth = headers.get("authorization", "")
        if not auth.startswith("vapid "):
            return "no VAPID authorization"
        try:
            if not Vapid02.verify(auth):
                return "VAPID signature does not verify"
        except Exception as exc:
            return f"VAPID header malformed: {exc!r}"
        token = auth.split("t=", 1)[1].split(",", 1)[0]
        claims = orjson.loads(_unb64(token.split(".")[1]))
        if claims.get("aud") != self.origin:
            return f"VAPID aud {claims.get('aud')!r} is not {self.origin}"
        if not time.time() < claims.get("exp", 0) <= time.time() + 24 * 3600:
            return "VAPID exp out of range"
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            return "VAPID sub is not a contact"
        return None


def _certificate(directory: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


@contextlib.asynccontextmanager
async def running_push_service() -> AsyncIterator[FakePushService]:
    """The fake service on a free loopback port (bound first, so no port race)."""
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = _certificate(Path(tmp))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        sock.set_inheritable(True)
        port = sock.getsockname()[1]
        config = Config()
        config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) it now
        config.certfile, config.keyfile = cert, key
        config.alpn_protocols = ["h2", "http/1.1"]
        config.accesslog = None
        config.errorlog = None
        config.h2_max_concurrent_streams = 1000
        # A push service keeps its HTTP/2 connections (hypercorn closes one after 1000).
        config.keep_alive_max_requests = 10**9
        service = FakePushService(f"https://localhost:{port}", cert)
        stop = asyncio.Event()
        task = asyncio.create_task(serve(service, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        try:
            yield service
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)

"""A fake Web Push service on loopback that checks what a real one would.

It speaks HTTP/2 over TLS (a self-signed certificate for localhost; an
``h2`` connection per client connection answering each request as its stream
ends, since an ASGI server's per-request machinery would be what a benchmark
measured), or HTTP/1.1 only (hypercorn) to drive a sender's fallback. For
every message it checks, as FCM or Mozilla's autopush
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
import ssl
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
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    StreamEnded,
    StreamReset,
)
from h2.exceptions import ProtocolError as H2ProtocolError
from h2.settings import SettingCodes
from h2.settings import Settings as H2Settings
from hypercorn.asyncio import serve
from hypercorn.config import Config
from py_vapid import Vapid02

__all__ = ["Browser", "FakePushService", "Received", "running_push_service"]

URGENCIES = {"very-low", "low", "normal", "high"}
MAX_STREAMS = 100  # streams a client may open per connection (FCM and autopush allow about this)
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
    connections: int = 0  # HTTP/2 connections clients opened
    goaway_after: int = 0  # close each HTTP/2 connection with GOAWAY after this many answers
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
        """ASGI, for the HTTP/1.1 server."""
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
        status, extra = self.handle(
            scope["method"], scope["path"], scope["http_version"], headers, body
        )
        out = [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": b""})

    def handle(
        self, method: str, path: str, http_version: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str]]:
        """One request: the status and the response headers."""
        token = path.removeprefix("/push/")
        b = self.browsers.get(token)
        if method != "POST" or b is None:
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
        self.received.append(Received(token, orjson.loads(clear), headers, http_version, key))
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


class _H2Server(asyncio.Protocol):
    """One client connection: HTTP/2 over TLS, each request answered when its stream ends."""

    def __init__(self, service: FakePushService) -> None:
        self.service = service
        self.h2 = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.requests: dict[int, tuple[dict[str, str], bytearray]] = {}
        self.transport: asyncio.Transport | None = None
        self.answered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not asyncio's
        self.service.connections += 1
        self.h2.local_settings = H2Settings(
            client=False, initial_values={SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS}
        )
        self.h2.initiate_connection()
        assert self.transport is not None
        self.transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.transport.is_closing():
            return
        try:
            events = self.h2.receive_data(data)
        except H2ProtocolError as exc:
            self.service.problems.append(f"HTTP/2 protocol error: {exc!r}")
            self.transport.write(self.h2.data_to_send())
            self.transport.close()
            return
        for event in events:
            if isinstance(event, RequestReceived):
                self.requests[event.stream_id] = (dict(event.headers), bytearray())  # type: ignore[arg-type]
            elif isinstance(event, DataReceived):
                if event.stream_id in self.requests:
                    self.requests[event.stream_id][1].extend(event.data)
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded):
                request = self.requests.pop(event.stream_id, None)
                if request is not None:
                    self._answer(event.stream_id, *request)
                if self.transport.is_closing():
                    return
            elif isinstance(event, StreamReset):
                self.requests.pop(event.stream_id, None)
            elif isinstance(event, ConnectionTerminated):
                self.transport.close()
        self.transport.write(self.h2.data_to_send())

    def _answer(self, stream_id: int, headers: dict[str, str], body: bytearray) -> None:
        method, path = headers.pop(":method", ""), headers.pop(":path", "")
        fields = {k: v for k, v in headers.items() if not k.startswith(":")}
        status, extra = self.service.handle(method, path, "2", fields, bytes(body))
        self.h2.send_headers(stream_id, [(":status", str(status)), *extra.items()], end_stream=True)
        self.answered += 1
        if self.answered == self.service.goaway_after and self.transport is not None:
            # As a real service does now and then: what came after this stream goes elsewhere.
            self.h2.close_connection(last_stream_id=stream_id)
            self.transport.write(self.h2.data_to_send())
            self.transport.close()


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
async def running_push_service(*, http2: bool = True) -> AsyncIterator[FakePushService]:
    """The fake service on a free loopback port (bound first, so no port race); HTTP/2
    only, or with ``http2=False`` a service that offers HTTP/1.1 alone."""
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = _certificate(Path(tmp))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        port = sock.getsockname()[1]
        service = FakePushService(f"https://localhost:{port}", cert)
        if http2:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(cert, key)
            tls.set_alpn_protocols(["h2"])
            loop = asyncio.get_running_loop()
            clients: list[_H2Server] = []

            def accept() -> _H2Server:
                clients.append(_H2Server(service))
                return clients[-1]

            server = await loop.create_server(accept, sock=sock, ssl=tls)
            try:
                yield service
            finally:
                server.close()
                for client in clients:
                    if client.transport is not None:
                        client.transport.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), 5)
            return
        sock.set_inheritable(True)
        config = Config()
        config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) it now
        config.certfile, config.keyfile = cert, key
        config.alpn_protocols = ["http/1.1"]
        config.accesslog = None
        config.errorlog = None
        config.keep_alive_max_requests = 10**9
        stop = asyncio.Event()
        task = asyncio.create_task(serve(service, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        try:
            yield service
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)

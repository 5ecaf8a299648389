"""Web Push (pure): browser subscriptions checked, alerts built, payloads encrypted, VAPID signed.

The standards, each through a well-kept library where there is one:

- RFC 8030 (delivery): a POST to the subscription's endpoint with ``TTL``
  (seconds the push service may hold the message), ``Urgency`` (very-low, low,
  normal, high; from the item's urgency) and ``Topic`` (one per item, so a
  correction or a withdrawal replaces an alert still waiting at the push
  service for an offline browser).
- RFC 8291 (payload encryption, ``aes128gcm``): ``http_ece`` with a fresh
  ephemeral key per message, against the browser's ``p256dh`` key and
  ``auth`` secret.
- RFC 8292 (VAPID): ``py_vapid`` signs a JWT per push service origin; the
  token is reused until shortly before it expires.

The payload is what the service worker (``ticker/static/ticker-push-sw.js``)
reads: an ``alert`` with the title, headline, link, language and direction,
or a ``withdraw`` naming the item whose notification it should close.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import http_ece
import jsonschema
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from py_vapid import Vapid02, b64urlencode

from ticker.client.push import Push, ttl_seconds
from ticker.editions import direction_of, language_of, title_of
from ticker.exceptions import ValidationError
from ticker.filters import Filter
from ticker.intake.schema import raise_first_error

__all__ = [
    "Message",
    "Subscription",
    "VapidKeys",
    "VapidSigner",
    "build_message",
    "encrypt",
    "host_allowed",
    "parse_subscription",
    "seal",
    "seal_many",
    "subscription_schema",
    "topic_of",
    "urgency_of",
]

MAX_TTL = 28 * 24 * 3600  # push services keep a message four weeks at most
_B64URL = r"^[A-Za-z0-9_-]+={0,2}$"
_SLUG = {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]{0,39}$"}
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# A VAPID token lives this long (RFC 8292 caps it at 24 h) and is renewed with an hour to spare.
TOKEN_SECONDS = 12 * 3600
TOKEN_MARGIN = 3600


def subscription_schema(editions: tuple[str, ...]) -> dict[str, Any]:
    """JSON Schema of ``POST /v1/push/subscriptions``: the browser's PushSubscription
    (``subscription.toJSON()``) and what the reader wants pushed."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "subscription": {
                "type": "object",
                "properties": {
                    "endpoint": {"type": "string", "minLength": 1, "maxLength": 1024},
                    "expirationTime": {"type": ["integer", "null"]},
                    "keys": {
                        "type": "object",
                        "properties": {
                            "p256dh": {"type": "string", "maxLength": 200, "pattern": _B64URL},
                            "auth": {"type": "string", "maxLength": 100, "pattern": _B64URL},
                        },
                        "required": ["p256dh", "auth"],
                        "additionalProperties": False,
                    },
                },
                "required": ["endpoint", "keys"],
                "additionalProperties": False,
            },
            "filter": {
                "type": "object",
                "properties": {
                    "edition": {"type": "string", "enum": list(editions)},
                    "max_urgency": {"type": "integer", "minimum": 1, "maximum": 9},
                    "categories": {
                        "type": "array",
                        "items": _SLUG,
                        "maxItems": 20,
                        "uniqueItems": True,
                    },
                    "regions": {
                        "type": "array",
                        "items": _SLUG,
                        "maxItems": 20,
                        "uniqueItems": True,
                    },
                },
                "required": ["edition"],
                "additionalProperties": False,
            },
        },
        "required": ["subscription", "filter"],
        "additionalProperties": False,
    }


@lru_cache(maxsize=8)
def _validator(editions: tuple[str, ...]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(subscription_schema(editions))


@dataclass(frozen=True, slots=True)
class Subscription:
    """One browser's push subscription and its filter."""

    endpoint: str
    p256dh: bytes  # the browser's P-256 public key, uncompressed (65 bytes)
    auth: bytes  # the browser's 16-byte authentication secret
    edition: str
    max_urgency: int = 2  # flash news by default: a push interrupts the reader
    categories: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    created_at: float = field(default=0.0, compare=False)

    @property
    def id(self) -> str:
        """The subscription's key: a hash of its endpoint (a repeat is an update)."""
        return hashlib.sha256(self.endpoint.encode()).hexdigest()

    @property
    def filter(self) -> Filter:
        return Filter(frozenset({self.edition}), self.categories, self.regions, self.max_urgency)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "endpoint": self.endpoint,
                "p256dh": _b64(self.p256dh),
                "auth": _b64(self.auth),
                "edition": self.edition,
                "max_urgency": self.max_urgency,
                "categories": sorted(self.categories),
                "regions": sorted(self.regions),
                "created_at": self.created_at,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Subscription:
        d = orjson.loads(raw)
        return cls(
            d["endpoint"],
            _unb64(d["p256dh"]),
            _unb64(d["auth"]),
            d["edition"],
            int(d["max_urgency"]),
            frozenset(d["categories"]),
            frozenset(d["regions"]),
            float(d.get("created_at") or 0),
        )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """The endpoint's host is one of the allowed push services (or a subdomain); ``*`` any."""
    host = host.lower().rstrip(".")
    return any(a == "*" or host == a or host.endswith("." + a) for a in allowed)


def parse_subscription(
    data: Any, editions: tuple[str, ...], allowed_hosts: Sequence[str], *, now: float
) -> Subscription:
    """Check a subscription body; raise ValidationError naming the bad field."""
    raise_first_error(_validator(editions), data)
    sub, f = data["subscription"], data["filter"]
    endpoint = sub["endpoint"]
    try:
        parts = urlsplit(endpoint)
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        raise ValidationError(
            "subscription.endpoint is not a valid URL", "subscription.endpoint"
        ) from None
    if parts.scheme != "https" or not parts.hostname:
        raise ValidationError("subscription.endpoint must be an https URL", "subscription.endpoint")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise ValidationError(
            "subscription.endpoint must not carry credentials or a fragment",
            "subscription.endpoint",
        )
    if not host_allowed(parts.hostname, allowed_hosts):
        raise ValidationError(
            f"subscription.endpoint is not a known push service ({parts.hostname})",
            "subscription.endpoint",
        )
    try:
        p256dh = _unb64(sub["keys"]["p256dh"])
        auth = _unb64(sub["keys"]["auth"])
    except (ValueError, TypeError):
        raise ValidationError("the keys must be base64url", "subscription.keys") from None
    if len(p256dh) != 65 or p256dh[0] != 4:
        raise ValidationError(
            "subscription.keys.p256dh must be an uncompressed P-256 key (65 bytes)",
            "subscription.keys.p256dh",
        )
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise ValidationError(
            "subscription.keys.p256dh is not a point on P-256", "subscription.keys.p256dh"
        ) from None
    if len(auth) != 16:
        raise ValidationError("subscription.keys.auth must be 16 bytes", "subscription.keys.auth")
    return Subscription(
        endpoint,
        p256dh,
        auth,
        f["edition"],
        int(f.get("max_urgency", 2)),
        frozenset(f.get("categories") or ()),
        frozenset(f.get("regions") or ()),
        now,
    )


def urgency_of(urgency: int) -> str:
    """RFC 8030 Urgency from the item's (IPTC 1 highest): flashes wake a phone, routine waits."""
    if urgency <= 2:
        return "high"
    if urgency <= 4:
        return "normal"
    if urgency <= 6:
        return "low"
    return "very-low"


def topic_of(item_id: str) -> str:
    """RFC 8030 Topic (at most 32 URL-safe base64 characters): the item's own id if it fits."""
    if _TOPIC.match(item_id):
        return item_id
    return _b64(hashlib.sha256(item_id.encode()).digest())[:32]


@dataclass(frozen=True, slots=True)
class Message:
    """One push for every subscription that wants it: the clear payload and its headers."""

    payload: bytes
    ttl: int
    urgency: str
    topic: str

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """RFC 8030 and 8291 request headers (lower-case, as HTTP/2 sends them)."""
        return [
            (b"ttl", str(self.ttl).encode()),
            (b"urgency", self.urgency.encode()),
            (b"topic", self.topic.encode()),
            (b"content-encoding", b"aes128gcm"),
            (b"content-type", b"application/octet-stream"),
        ]


def build_message(push: Push, now: datetime) -> Message | None:
    """The push for a planned alert or withdrawal; None when there is nothing to send
    (an alert for an item that has already expired is never sent late)."""
    item = push.item
    lang = str(item.get("language") or language_of(str(item.get("edition") or "")))
    base = {
        "action": push.action,
        "id": push.item_id,
        "version": item.get("version"),
        "event_id": push.event_id,
        "tag": f"ticker-{push.item_id}",
    }
    if push.action == "withdraw":
        # Short-lived: it only matters while the alert may still be shown or pending.
        payload = base
        return Message(orjson.dumps(payload), 3600, "normal", topic_of(push.item_id))
    ttl = min(ttl_seconds(item, now), MAX_TTL)
    if ttl <= 0:
        return None
    payload = {
        **base,
        "title": title_of(item),
        "body": item["headline"],
        "url": item.get("url"),
        "edition": item.get("edition"),
        "lang": lang,
        "dir": direction_of(lang),
        "urgency": item.get("urgency"),
        "updated": push.event_type == "item.updated",
    }
    urgency = urgency_of(int(item.get("urgency") or 9))
    return Message(orjson.dumps(payload), ttl, urgency, topic_of(push.item_id))


_RECORD_SIZE = 4096
_KEY_INFO = b"WebPush: info\x00"
_CEK_INFO = b"Content-Encoding: aes128gcm\x00\x01"
_NONCE_INFO = b"Content-Encoding: nonce\x00\x01"
_P256 = ec.SECP256R1()
_POINT = (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def encrypt(payload: bytes, sub: Subscription) -> bytes:
    """RFC 8291 aes128gcm for one subscription (see ``seal``)."""
    return seal(payload, sub.p256dh, sub.auth)


def seal_many(jobs: Sequence[tuple[bytes, bytes, bytes]]) -> list[bytes]:
    """``seal`` for each (payload, p256dh, auth): one call per batch to another process."""
    return [seal(payload, p256dh, auth) for payload, p256dh, auth in jobs]


def seal(payload: bytes, p256dh: bytes, auth: bytes) -> bytes:
    """RFC 8291 aes128gcm with a fresh ephemeral key per message.

    The derivation is written out (each HKDF here is one or two HMACs, as
    RFC 8291 section 3.4 and RFC 8188 section 2 give it) because
    ``http_ece``'s general path costs more than the ECDH itself; a payload too
    big for one record goes through ``http_ece``. The tests and the fake push
    service decrypt with ``http_ece``.
    """
    ephemeral = ec.generate_private_key(_P256)
    if len(payload) + 17 > _RECORD_SIZE:
        return bytes(
            http_ece.encrypt(
                payload,
                private_key=ephemeral,
                dh=p256dh,
                auth_secret=auth,
                version="aes128gcm",
            )
        )
    ua_public = ec.EllipticCurvePublicKey.from_encoded_point(_P256, p256dh)
    as_public = ephemeral.public_key().public_bytes(*_POINT)
    shared = ephemeral.exchange(ec.ECDH(), ua_public)
    # IKM = HKDF(salt=auth, ikm=ECDH, info="WebPush: info" 0 ua_public as_public, 32)
    ikm = _hmac(_hmac(auth, shared), _KEY_INFO + p256dh + as_public + b"\x01")
    salt = os.urandom(16)
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, _CEK_INFO)[:16]
    nonce = _hmac(prk, _NONCE_INFO)[:12]
    # One record, the last: the payload, the delimiter 2, no padding (sequence number 0).
    body = AESGCM(cek).encrypt(nonce, payload + b"\x02", None)
    return salt + _RECORD_SIZE.to_bytes(4, "big") + bytes([len(as_public)]) + as_public + body


@dataclass(frozen=True, slots=True)
class VapidKeys:
    """The service's VAPID key pair: the private key as PEM, the public one for pages."""

    private_pem: bytes

    @classmethod
    def generate(cls) -> VapidKeys:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cls(pem)

    @property
    def public_key(self) -> str:
        """The application server key a page passes to ``pushManager.subscribe``."""
        vapid = Vapid02.from_pem(self.private_pem)
        raw = vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return str(b64urlencode(raw))


class VapidSigner:
    """``Authorization: vapid t=...,k=...`` per push service origin, signed once and reused."""

    def __init__(self, keys: VapidKeys, subject: str) -> None:
        self.vapid = Vapid02.from_pem(keys.private_pem)
        self.subject = subject
        self._tokens: dict[str, tuple[float, str]] = {}

    def authorization(self, endpoint: str, now: float | None = None) -> str:
        now = time.time() if now is None else now
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        cached = self._tokens.get(audience)
        if cached is not None and cached[0] - TOKEN_MARGIN > now:
            return cached[1]
        expires = int(now) + TOKEN_SECONDS
        claims = {"aud": audience, "exp": expires, "sub": self.subject}
        header: Mapping[str, str] = self.vapid.sign(claims)
        token = header["Authorization"]
        self._tokens[audience] = (expires, token)
        return token

"""Standard Webhooks signatures: secrets, and the three headers of each request.

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}`` under
HMAC-SHA256 with the endpoint's secret, sent as ``webhook-signature: v1,<base64>``
(https://www.standardwebhooks.com). The ``standardwebhooks`` package signs, and
receivers can verify with it (or any Standard Webhooks library).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

__all__ = ["SECRET_PREFIX", "new_secret", "signed_headers"]

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(
    secrets: str | Sequence[str], msg_id: str, body: bytes, now: datetime | None = None
) -> dict[str, str]:
    """The webhook-id, webhook-timestamp and webhook-signature headers for ``body``.

    With several secrets (a rotation's grace period) the signature header carries
    one ``v1,...`` per secret, space separated; a receiver holding either verifies.
    """
    when = (now or datetime.now(UTC)).astimezone(UTC)
    timestamp = int(when.timestamp())
    at = datetime.fromtimestamp(timestamp, UTC)
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    text = body.decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(Webhook(k).sign(msg_id, at, text) for k in keys),
    }

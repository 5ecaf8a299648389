"""Which proxies the service believes about the client's address, and a warning when
it believes everyone.

uvicorn takes the client address from ``X-Forwarded-For`` when the connection comes
from a trusted proxy (``TICKER_FORWARDED_ALLOW_IPS``, else uvicorn's own
``FORWARDED_ALLOW_IPS``, else 127.0.0.1). Trusting ``*`` on an address other clients
can reach lets each of them choose its address: rate limits, stream caps and logs
then count what the client wrote.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping

from ticker.config import Settings

__all__ = ["open_trust_warning", "trusted_proxies", "warn_if_trusting_everyone"]

log = logging.getLogger("ticker.serve.server")

DEFAULT_TRUST = "127.0.0.1"  # uvicorn's default


def trusted_proxies(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """The trusted proxy entries uvicorn will use, as it resolves them."""
    value = settings.forwarded_allow_ips or environ.get("FORWARDED_ALLOW_IPS", DEFAULT_TRUST)
    return [part.strip() for part in value.split(",") if part.strip()]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_trust_warning(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """The warning to log when every peer is trusted on a non-loopback bind, else None."""
    if "*" not in trusted_proxies(settings, environ) or _is_loopback(settings.host):
        return None
    return (
        f"trusting X-Forwarded-For from every peer ('*') while listening on {settings.host}: "
        "any client that reaches this port directly chooses its own address for rate "
        "limits, stream caps and logs; set TICKER_FORWARDED_ALLOW_IPS to your proxy's "
        "address or network (docs/proxies.md)"
    )


def warn_if_trusting_everyone(settings: Settings, environ: Mapping[str, str]) -> bool:
    """Log :func:`open_trust_warning` once, if it applies; True if it did."""
    message = open_trust_warning(settings, environ)
    if message is not None:
        log.warning(message)
    return message is not None

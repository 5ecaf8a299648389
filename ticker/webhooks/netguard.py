"""Refusing webhook URLs that point inside the network (SSRF guard).

A URL is checked when it is registered and again at every delivery: the name
is resolved, every address must be public, and the request is then sent to
the address that was checked (pinned), so a DNS answer that changes between
the check and the connection (DNS rebinding) cannot reach a private host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from ticker.webhooks.special_ranges import special_range

__all__ = ["AddressRefused", "Target", "is_public", "refusal", "resolve"]

RESOLVE_TIMEOUT = 5.0  # seconds; a name that takes longer is treated as unresolvable


class AddressRefused(Exception):
    """The URL's host does not resolve (``final`` False: DNS may recover), or resolves
    to a non-public address (``final``)."""

    def __init__(self, message: str, *, final: bool = True) -> None:
        super().__init__(message)
        self.final = final


def refusal(address: str) -> str | None:
    """Why ``address`` may not be a webhook's destination (the IANA special-purpose
    range it falls in, ticker.webhooks.special_ranges), or None for a public unicast address."""
    return special_range(ipaddress.ip_address(address.split("%", 1)[0]))


def is_public(address: str) -> bool:
    """True for a globally routable unicast address outside every special range."""
    return refusal(address) is None


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send a request: the URL with the checked address in place of the name."""

    url: httpx.URL  # the checked address in place of the name (unless private is allowed)
    host_header: str | None
    sni_hostname: str | None  # for https: the name the certificate must match


async def resolve(url: str, *, allow_private: bool) -> Target:
    """Resolve the URL's host; refuse it unless every address is public (or allowed)."""
    parsed = httpx.URL(url)
    host = parsed.host
    if not host or parsed.scheme not in ("http", "https"):
        raise AddressRefused("the URL needs an http(s) scheme and a host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"{host} does not resolve ({exc})", final=False) from None
    except TimeoutError:
        msg = f"{host} did not resolve within {RESOLVE_TIMEOUT}s"
        raise AddressRefused(msg, final=False) from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise AddressRefused(f"{host} does not resolve", final=False)
    if allow_private:
        # Nothing to guard: connect by name (and let the system pick the address).
        return Target(url=parsed, host_header=None, sni_hostname=None)
    for address in addresses:
        if (why := refusal(address)) is not None:
            raise AddressRefused(f"{host} resolves to a non-public address ({address}: {why})")
    # Prefer IPv4 where there is one: many hosts publish AAAA records they cannot route.
    pinned = next((a for a in addresses if ":" not in a), addresses[0]).split("%", 1)[0]
    netloc = host if parsed.port is None else f"{host}:{parsed.port}"
    if ":" in host:  # an IPv6 literal keeps its brackets in the Host header
        netloc = f"[{host}]" if parsed.port is None else f"[{host}]:{parsed.port}"
    return Target(
        url=parsed.copy_with(host=pinned),
        host_header=netloc,
        sni_hostname=host if parsed.scheme == "https" else None,
    )

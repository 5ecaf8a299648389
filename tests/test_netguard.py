"""The SSRF guard's range table: every IANA special-purpose range is refused, at
registration (before any delivery) and by the resolver each delivery goes through."""

from __future__ import annotations

import ipaddress

import pytest

from tests.support.stack import Stack, auth
from ticker.webhooks.netguard import AddressRefused, is_public, refusal, resolve
from ticker.webhooks.special_ranges import SPECIAL_RANGES, embedded_ipv4


def _samples(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    """The range's first, a middle and its last address."""
    return [str(net[0]), str(net[net.num_addresses // 2]), str(net[-1])]


RANGE_SAMPLES = [
    pytest.param(address, str(net), id=f"{net}-{i}")
    for net, _ in SPECIAL_RANGES
    for i, address in enumerate(_samples(net))
]

# The forms the black-box run got accepted, and the IPv4 host each one reaches.
EMBEDDED = [
    ("::127.0.0.1", "127.0.0.1"),  # IPv4-compatible
    ("::ffff:169.254.169.254", "169.254.169.254"),  # IPv4-mapped
    ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64 well-known
    ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
    ("64:ff9b:1::a9fe:a9fe", "169.254.169.254"),  # NAT64 local-use
    ("2002:7f00:1::1", "127.0.0.1"),  # 6to4
    ("2001:0:7f00:1::1", "127.0.0.1"),  # Teredo (its server field)
    ("::ffff:0:a9fe:a9fe", "169.254.169.254"),  # SIIT
]


@pytest.mark.parametrize(("address", "net"), RANGE_SAMPLES)
def test_every_special_range_is_refused(address: str, net: str) -> None:
    """Addresses at the start, middle and end of each special-purpose range are refused."""
    assert not is_public(address)
    assert refusal(address) is not None


@pytest.mark.parametrize(("address", "inner"), EMBEDDED)
def test_ipv6_forms_embedding_ipv4_are_refused_and_named(address: str, inner: str) -> None:
    """IPv6 forms that carry an IPv4 address are refused, and the reason names that address."""
    assert embedded_ipv4(ipaddress.ip_address(address)) == ipaddress.ip_address(inner)
    assert inner in (refusal(address) or "")


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450::1"]
)
def test_public_addresses_pass(address: str) -> None:
    """Ordinary public unicast addresses, IPv4 and IPv6, are not refused."""
    assert is_public(address), refusal(address)


@pytest.mark.parametrize(("address", "net"), RANGE_SAMPLES[::3])
async def test_resolver_refuses_each_range_before_any_connection(address: str, net: str) -> None:
    """The resolver every delivery goes through refuses a URL on each range (final)."""
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(AddressRefused) as refused:
        await resolve(f"http://{host}:8080/hook", allow_private=False)
    assert refused.value.final


async def test_registration_refuses_every_range(stack: Stack) -> None:
    """POST /v1/webhooks answers 422 naming url for one address of every range and
    for each embedded-IPv4 form, and stores nothing."""
    hosts = [str(net[-1]) for net, _ in SPECIAL_RANGES] + [a for a, _ in EMBEDDED]
    for address in hosts:
        host = f"[{address}]" if ":" in address else address
        r = await stack.http.post(
            "/v1/webhooks", json={"url": f"http://{host}/hook"}, headers=auth("admin")
        )
        assert r.status_code == 422, (address, r.text)
        assert r.json()["error"]["field"] == "url"
    r = await stack.http.get("/v1/webhooks", headers=auth("admin"))
    assert r.json()["webhooks"] == []

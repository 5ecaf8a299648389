"""``ticker doctor``: check a configuration and say what is wrong in plain words.

Reads the same ``TICKER_*`` variables as ``ticker serve``; each check is one
line (ok, warn or FAIL). The exit status is 1 when any check fails.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ticker.config import Settings
from ticker.exceptions import ConfigError

__all__ = [
    "Finding",
    "check_editions",
    "check_keys",
    "check_lane",
    "check_origins",
    "check_proxies",
    "check_redis",
    "diagnose",
    "main",
]

MIN_REDIS = (7, 0)  # stream resume and sharded pub/sub use Redis 7 commands
_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True, slots=True)
class Finding:
    level: str  # "ok", "warn" or "FAIL"
    topic: str
    text: str

    def __str__(self) -> str:
        return f"{self.level:<4} {self.topic}: {self.text}"


def ok(topic: str, text: str) -> Finding:
    return Finding("ok", topic, text)


def warn(topic: str, text: str) -> Finding:
    return Finding("warn", topic, text)


def fail(topic: str, text: str) -> Finding:
    return Finding("FAIL", topic, text)


def check_keys(settings: Settings) -> list[Finding]:
    from ticker.intake.auth import KeyRing

    try:
        entries = settings.api_key_entries()
        KeyRing.from_entries(entries)
    except ConfigError as exc:
        return [fail("API keys", str(exc))]
    except (AttributeError, TypeError):
        return [fail("API keys", "each key must be a JSON object with name, key and scopes")]
    if not entries:
        return [warn("API keys", "none configured: nobody can post (set TICKER_API_KEYS_FILE)")]
    source = f" (file {settings.api_keys_file} readable)" if settings.api_keys_file else ""
    return [ok("API keys", f"{len(entries)} valid{source}")]


def check_editions(settings: Settings) -> list[Finding]:
    bad = [e for e in settings.editions if not _TAG.match(e)]
    if bad:
        return [fail("editions", f"{', '.join(bad)}: not a language tag such as en or pt-BR")]
    if len(set(settings.editions)) != len(settings.editions):
        return [warn("editions", f"named twice in {', '.join(settings.editions)}")]
    return [ok("editions", ", ".join(settings.editions))]


def check_origins(settings: Settings) -> list[Finding]:
    from ticker.middleware.cors import ANY_ORIGIN, parse_allowed_origins

    try:
        origins = parse_allowed_origins(settings.allowed_origins)
    except ConfigError as exc:
        return [fail("origins", f"{exc} (write scheme and host, e.g. https://news.example)")]
    if origins == (ANY_ORIGIN,):
        return [warn("origins", "any site may embed the ticker and open WebSockets (*)")]
    return [ok("origins", ", ".join(origins))]


def check_proxies(settings: Settings, environ: Mapping[str, str]) -> list[Finding]:
    raw = settings.forwarded_allow_ips or environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1"
    entries = [e.strip() for e in raw.split(",") if e.strip()]
    if "*" in entries:
        return [
            warn(
                "proxy trust",
                "every client may set X-Forwarded-For, so per-address limits can be dodged; "
                "name your proxies in TICKER_FORWARDED_ALLOW_IPS",
            )
        ]
    bad = []
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            bad.append(entry)
    if bad:
        return [fail("proxy trust", f"{', '.join(bad)}: not an address or network")]
    return [ok("proxy trust", f"X-Forwarded-For taken only from {', '.join(entries)}")]


def check_lane(settings: Settings) -> list[Finding]:
    """Whether the fast lane (ticker.serve.fastlane) would open streams in this configuration."""
    import importlib.util

    if importlib.util.find_spec("httptools") is None:
        return [warn("fast lane", "off: httptools is not installed (streams take the ASGI path)")]
    from ticker.app import create_app
    from ticker.serve.server import server_config

    config = server_config(create_app(settings), settings, log_config=None)
    config.load()
    lane = getattr(config.http_protocol_class, "lane", None)
    if lane is None:
        return [warn("fast lane", "off: the HTTP protocol has no lane")]
    lane.configure(config)
    if not lane.enabled:
        return [warn("fast lane", "off: the stream gate's middleware is not the one it mirrors")]
    return [ok("fast lane", "on for /v1/stream and /v1/ws")]


async def check_redis(settings: Settings, timeout: float) -> list[Finding]:
    from ticker.redis_conn import connect

    conns = connect(settings)
    try:
        info: dict[str, Any] = await asyncio.wait_for(conns.data.info("server"), timeout)
    except Exception as exc:  # any failure to reach it is the finding
        reason = str(exc) or type(exc).__name__
        return [fail("Redis", f"cannot reach {_where(settings)}: {reason}")]
    finally:
        await conns.aclose()
    version = str(info.get("redis_version", "?"))
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    if numbers < MIN_REDIS:
        return [
            fail("Redis", f"version {version} at {_where(settings)}; Ticker needs 7.0 or newer")
        ]
    return [ok("Redis", f"version {version} at {_where(settings)}")]


def _where(settings: Settings) -> str:
    from ticker.localrun import redact

    if settings.redis_cluster_nodes:
        return f"cluster {settings.redis_cluster_nodes}"
    if settings.redis_sentinels:
        return f"sentinels {settings.redis_sentinels} ({settings.redis_sentinel_master})"
    return redact(settings.redis_url)


def diagnose(environ: Mapping[str, str], timeout: float) -> list[Finding]:
    try:
        settings = Settings.from_env(environ)
    except ConfigError as exc:
        return [fail("settings", str(exc))]
    found = [ok("settings", "every TICKER_* variable parses")]
    found += asyncio.run(check_redis(settings, timeout))
    found += check_keys(settings)
    found += check_editions(settings)
    found += check_origins(settings)
    found += check_proxies(settings, environ)
    if all(f.level != "FAIL" for f in found):
        found += check_lane(settings)  # builds the app, which needs the keys and origins
    return found


def main(timeout: float = 3.0) -> int:
    found = diagnose(os.environ, timeout)
    for finding in found:
        print(finding, flush=True)
    failed = [f for f in found if f.level == "FAIL"]
    if failed:
        print(f"{len(failed)} problem(s) found", file=sys.stderr)
        return 1
    return 0

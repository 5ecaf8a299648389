"""Settings: one typed object read from ``TICKER_*`` environment variables.

Each field's default is the value used when its variable is unset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import orjson

from ticker.exceptions import ConfigError

__all__ = ["LOG_FORMATS", "Settings"]

LOG_FORMATS = ("json", "human")


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    """Service configuration. ``Settings.from_env()`` reads ``TICKER_<FIELD>``."""

    # Redis URL; `ticker run` starts a private Redis when this is unset.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Hash tag of every key, so several deployments can share one Redis.
    redis_prefix: str = "ticker"
    # Redis Cluster seed nodes (host:port,...); when set, TICKER_REDIS_URL gives only
    # credentials, the data lives on the master owning the prefix's slot, and
    # pub/sub is sharded. Empty (the default): no cluster.
    redis_cluster_nodes: str = ""
    # Redis Sentinels (host:port,...) and the master's name; when set, the data
    # (and, unless TICKER_QUEUE_REDIS_URL, the queue) is on that master. Empty: none.
    redis_sentinels: str = ""
    redis_sentinel_master: str = ""
    # A separate Redis for the arq queue; required with Cluster. Empty: the data Redis.
    queue_redis_url: str = ""
    # Replicas that must hold an accepted item or change before the intake answers
    # 202 (WAIT, up to the timeout; else 503, retry with the same Idempotency-Key).
    # 0 (the default): do not wait (asynchronous replication).
    redis_wait_replicas: int = 0
    redis_wait_timeout_ms: int = 1000
    # Where `ticker serve` listens.
    host: str = "127.0.0.1"
    port: int = 8000
    # API processes sharing the port (each holds one subscription and one hub).
    workers: int = 1
    # `ticker serve --workers N` restarts a dead API process after a backoff that
    # doubles from this many seconds up to the max; this many deaths within the
    # window is a crash loop: the supervisor stops and exits 1 (systemd takes over).
    restart_backoff_seconds: float = 0.25
    restart_backoff_max_seconds: float = 10.0
    restart_limit: int = 5
    restart_window_seconds: float = 60.0
    # Log level of every process: debug, info, warning or error.
    log_level: str = "info"
    # Log lines: "json" (one object per line) or "human" (short lines for a person).
    # `ticker run` writes "human" when its output is a terminal, unless this is set.
    log_format: str = "json"
    # API keys as JSON: [{"name", "key" | "key_sha256", "scopes", "editions"?}].
    api_keys: str = "[]"
    # A file holding the same JSON; read at startup (secrets from a mounted file).
    api_keys_file: str = ""
    # Editions (BCP 47 tags) the intake accepts.
    editions: tuple[str, ...] = ("en", "ar", "es")
    # Stream retention: the newest N events, and none older than this many seconds.
    stream_maxlen: int = 10_000
    stream_retention_seconds: int = 7 * 24 * 3600
    # Window in which an identical headline in the same edition is a duplicate.
    dedupe_window_seconds: int = 3600
    # Story score (0-100) at which a headline whose facts all agree with a recent one
    # is held as a near-duplicate (docs/story-matching.md); changed facts always differ.
    near_duplicate_threshold: float = 50.0
    # Events a client may have waiting before it is cut as a slow client.
    client_queue_max: int = 1000
    # Latest events each API process keeps to resume clients from memory (Redis
    # still rules on retention); 0: read every resume from Redis.
    replay_cache_events: int = 1000
    # Seconds one write to a client may block before it is cut.
    client_send_timeout: float = 30.0
    # How often each API process checks the stream for events pub/sub did not bring.
    catchup_seconds: float = 5.0
    # SSE heartbeat comment interval; WebSocket protocol ping interval.
    sse_ping_seconds: float = 15.0
    ws_ping_seconds: float = 20.0
    # Reconnect delay (ms) suggested to SSE clients by the `retry:` field.
    sse_retry_ms: int = 2000
    # Origins allowed to embed the ticker and open WebSockets; "*" for any.
    allowed_origins: tuple[str, ...] = ("*",)
    # Largest intake body accepted, in bytes, and how long it may take to arrive.
    max_body_bytes: int = 64 * 1024
    body_timeout_seconds: float = 10.0
    # Intake writes allowed per API key and per client address (`limits` syntax, several
    # separated by ";", e.g. "10/second;120/minute"); empty or "0" turns a limit off.
    rate_limit_per_key: str = "120/minute"
    rate_limit_per_ip: str = "600/minute"
    # Failed authentications (401, and 403 for a known key outside its rights) allowed per
    # client address and per key name on every route; over it, 429 before any key check.
    rate_limit_auth_failures: str = "30/minute"
    # Open streams (SSE and WebSocket together) per client address, per API process;
    # 0 means unlimited. Generous because many readers can share one carrier NAT address.
    # The same number caps the connections of any kind (idle keep-alive, a request head
    # still arriving, streams) one peer address holds, unless it is a trusted proxy.
    max_connections_per_ip: int = 256
    # Connections of any kind one API process holds; the next one gets a 503. 0: unlimited.
    max_open_connections: int = 50_000
    # Limits on a request head, before the app sees it: its total size in bytes (431),
    # its header lines (431), the request target's length (414), and the seconds it may
    # take to arrive, from the connection or a later request's first byte (408).
    max_head_bytes: int = 16 * 1024
    max_headers: int = 100
    max_request_line: int = 8 * 1024
    head_timeout_seconds: float = 10.0
    # Proxies trusted to set X-Forwarded-For/-Proto (uvicorn's forwarded_allow_ips): a comma
    # list of addresses or networks, or "*". Empty: uvicorn's own FORWARDED_ALLOW_IPS
    # variable, else 127.0.0.1.
    forwarded_allow_ips: str = ""
    # The fast paths (ticker/serve: the fast lane opening plain streams in uvicorn's
    # parser callback, parked connections, direct writes); 0 sends every stream down
    # the plain ASGI path. They also switch off by themselves when uvicorn lacks what
    # they use (one warning at startup) or after an error inside them (one error).
    fast_paths: bool = True
    # arq poll delay: the worst-case queue latency added to every item.
    worker_poll_delay: float = 0.01
    # Webhooks: refuse URLs that resolve to private, loopback or link-local addresses
    # unless this is true (tests and private networks set TICKER_WEBHOOK_ALLOW_PRIVATE=1).
    webhook_allow_private: bool = False
    # Seconds one delivery attempt may take (connect, send, answer).
    webhook_timeout_seconds: float = 10.0
    # Attempts per event before it goes to the endpoint's dead-letter list.
    webhook_max_attempts: int = 10
    # Backoff between attempts: base * 2**(attempt-1), capped, each delay drawn between
    # half and all of that (with the defaults, 21-43 minutes until the dead-letter list).
    webhook_retry_base_seconds: float = 5.0
    webhook_retry_max_seconds: float = 3600.0
    # Consecutive dead letters after which an endpoint is disabled; 0 never disables.
    webhook_disable_after: int = 5
    # Longest a job may run. A job whose worker died (kill -9) is re-run once
    # arq's in-progress mark lapses, this plus 10 s later.
    worker_job_timeout: float = 30.0
    # On SIGTERM a worker takes no new jobs and lets running ones finish for
    # this many seconds; the rest are cancelled and handed back to the queue.
    worker_shutdown_grace: int = 10
    # Seconds the API waits on one Redis command (or connection) before it
    # answers 503 with Retry-After; keeps the intake quick when Redis hangs.
    redis_timeout: float = 2.0
    # Web Push (docs/webpush.md). The VAPID private key as PEM (or TICKER_WEBPUSH_VAPID_
    # PRIVATE_KEY_FILE); empty: a key pair is made on first start and kept in Redis.
    webpush_vapid_private_key: str = ""
    # The contact push services may use (VAPID "sub"): a mailto: or https: URL.
    webpush_subject: str = "mailto:webpush@ticker.invalid"
    # Push service hosts a subscription may point at (suffix match); "*" for any.
    webpush_allowed_hosts: tuple[str, ...] = (
        "fcm.googleapis.com",
        "push.services.mozilla.com",
        "push.apple.com",
        "notify.windows.com",
    )
    # Allow endpoints on private or loopback addresses (tests, private push services).
    webpush_allow_private: bool = False
    # A CA bundle trusted for push services besides the system's (a private push service).
    webpush_ca_file: str = ""
    # Sends in flight at once, over pooled HTTP/2 connections.
    webpush_concurrency: int = 200
    # Processes that encrypt Web Push payloads beside the sender (RFC 8291's per-message
    # key agreement is most of a send's CPU); 0: the sender encrypts in its own process.
    webpush_encrypt_processes: int = 1
    # Seconds one send may take; attempts per message before it counts as failed.
    webpush_timeout_seconds: float = 10.0
    webpush_max_attempts: int = 5
    # Backoff between attempts: base * 2**(attempt-1), capped at 10 minutes, with jitter;
    # a push service's Retry-After is honoured when longer.
    webpush_retry_base_seconds: float = 5.0
    # Editors' console sign-in (accounts: `ticker users`). A session lasts this many
    # seconds from sign-in; the cookie is signed with TICKER_DESK_SECRET, or when that is
    # empty (the default) with a random secret kept in Redis and shared by every process.
    desk_session_seconds: int = 8 * 3600
    desk_secret: str = ""
    # After this many failed sign-ins for one account, or from one address, within
    # desk_lockout_seconds, sign-in is refused (429) until that window has passed.
    desk_login_failures_per_account: int = 5
    desk_login_failures_per_address: int = 20
    desk_lockout_seconds: int = 900
    # Optional single sign-on for the console through an OpenID Connect provider (code
    # flow with PKCE). The issuer URL turns it on (empty, the default: off); the claim names
    # the account (`ticker users add`), which must exist and be enabled: roles stay here.
    desk_oidc_issuer: str = ""
    desk_oidc_client_id: str = ""
    desk_oidc_client_secret: str = ""
    desk_oidc_claim: str = "preferred_username"
    # Items leave the ticker after this long unless they say otherwise (urgency 1..9).
    expiry_seconds_by_urgency: tuple[int, ...] = (
        6 * 3600,
        6 * 3600,
        4 * 3600,
        3 * 3600,
        2 * 3600,
        2 * 3600,
        3600,
        3600,
        3600,
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        names = {f.name for f in fields(cls)}
        for f in fields(cls):
            raw = env.get(f"TICKER_{f.name.upper()}")
            if raw is None and f"{f.name}_file" not in names:
                # Any setting may come from a file instead (TICKER_REDIS_URL_FILE: a password
                # in a mounted secret); the variable itself wins if both are set.
                raw = _read_secret(env.get(f"TICKER_{f.name.upper()}_FILE"), f.name)
            if raw is None:
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"TICKER_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
        if not self.editions:
            raise ConfigError("TICKER_EDITIONS must name at least one edition")
        if len(self.expiry_seconds_by_urgency) != 9:
            raise ConfigError("TICKER_EXPIRY_SECONDS_BY_URGENCY needs nine values (urgency 1..9)")
        if self.client_queue_max < 1 or self.stream_maxlen < 1 or self.replay_cache_events < 0:
            raise ConfigError("queue and stream bounds must be positive")
        from ticker.middleware.ratelimit import parse_limits

        parse_limits(self.rate_limit_per_key, "TICKER_RATE_LIMIT_PER_KEY")
        parse_limits(self.rate_limit_per_ip, "TICKER_RATE_LIMIT_PER_IP")
        parse_limits(self.rate_limit_auth_failures, "TICKER_RATE_LIMIT_AUTH_FAILURES")

    def api_key_entries(self) -> list[dict[str, Any]]:
        """The configured API keys, from TICKER_API_KEYS and TICKER_API_KEYS_FILE."""
        entries: list[dict[str, Any]] = []
        sources = [("TICKER_API_KEYS", self.api_keys)]
        if self.api_keys_file:
            try:
                with open(self.api_keys_file, "rb") as fh:
                    sources.append(("TICKER_API_KEYS_FILE", fh.read().decode()))
            except OSError as exc:
                raise ConfigError(f"TICKER_API_KEYS_FILE: {exc.strerror}") from None
        for name, text in sources:
            try:
                data = orjson.loads(text or "[]")
            except orjson.JSONDecodeError:
                raise ConfigError(f"{name} is not valid JSON") from None
            if not isinstance(data, list):
                raise ConfigError(f"{name} must be a JSON list")
            entries.extend(data)
        return entries


def _read_secret(path: str | None, name: str) -> str | None:
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            return fh.read().decode().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        # The path is named, never the contents.
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"TICKER_{name.upper()}_FILE: {reason}") from None


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(raw)


def _parse(name: str, kind: Any, raw: str) -> Any:
    kind = str(kind)
    try:
        if kind == "bool":
            return _bool(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "tuple[str, ...]":
            return _csv(raw)
        if kind == "tuple[int, ...]":
            return tuple(int(v) for v in _csv(raw))
    except ValueError:
        raise ConfigError(f"TICKER_{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw

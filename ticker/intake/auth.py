"""Editor API keys: stored only as SHA-256 hashes, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ticker.exceptions import AuthError, ConfigError, ForbiddenError, NotFoundError

__all__ = ["SCOPES", "ApiKey", "KeyRing", "hash_key", "require_readable"]

SCOPES = frozenset({"publish", "correct", "retract", "admin"})


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A configured key: its name (logged, never the key), hash, scopes, editions."""

    name: str
    digest: bytes
    scopes: frozenset[str]
    editions: frozenset[str] | None = None  # None: every edition

    def require(self, scope: str, edition: str | None = None) -> None:
        if scope not in self.scopes and "admin" not in self.scopes:
            raise ForbiddenError(f"this API key lacks the {scope!r} scope")
        if edition is not None and self.editions is not None and edition not in self.editions:
            raise ForbiddenError(f"this API key may not touch edition {edition!r}", "edition")

    def may_read(self, edition: str | None) -> bool:
        """Whether this key may see items of ``edition`` (every key reads its own editions;
        an item whose edition is unknown is readable only by an unlimited key)."""
        return self.editions is None or (edition is not None and edition in self.editions)


def require_readable(key: ApiKey, edition: str | None, item_id: str) -> None:
    """Let ``key`` read an item of ``edition`` (its document, history, or a place in a
    list), or raise the same 404 as for an item that does not exist: a key limited to
    some editions must not learn that an item of another one exists (embargoed items
    included). A list filters with ``key.may_read(edition)`` instead."""
    if not key.may_read(edition):
        raise NotFoundError(f"no item {item_id!r}", "id")


class KeyRing:
    """Looks a presented bearer token up among the configured key hashes."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._keys = tuple(keys)

    @classmethod
    def from_entries(cls, entries: Iterable[Mapping[str, Any]]) -> KeyRing:
        keys = []
        for i, entry in enumerate(entries):
            name = str(entry.get("name") or f"key{i}")
            if "key_sha256" in entry:
                hexdigest = str(entry["key_sha256"]).lower()
            elif "key" in entry:
                hexdigest = hash_key(str(entry["key"]))  # the plain key is not kept
            else:
                raise ConfigError(f"API key {name!r} needs 'key' or 'key_sha256'")
            try:
                digest = bytes.fromhex(hexdigest)
            except ValueError:
                raise ConfigError(f"API key {name!r}: key_sha256 is not hex") from None
            scopes = frozenset(entry.get("scopes") or ["publish"])
            if not scopes <= SCOPES:
                raise ConfigError(f"API key {name!r}: unknown scopes {sorted(scopes - SCOPES)}")
            editions = entry.get("editions")
            keys.append(ApiKey(name, digest, scopes, frozenset(editions) if editions else None))
        return cls(keys)

    def authenticate(self, authorization: str | None) -> ApiKey:
        if not authorization:
            raise AuthError("missing Authorization: Bearer <key> header", "Authorization")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("expected Authorization: Bearer <key>", "Authorization")
        presented = hashlib.sha256(token.encode()).digest()
        found: ApiKey | None = None
        # Compare with every key so the time taken does not tell which one matched.
        for key in self._keys:
            if hmac.compare_digest(presented, key.digest):
                found = key
        if found is None:
            raise AuthError("unknown API key", "Authorization")
        return found

"""Editor accounts for the console: roles mapped to API scopes, argon2 password hashes.

API keys stay for machines; people sign in with an account. An account is a Redis hash
(``Keys.user``) holding its role, editions, argon2id hash and a disabled flag. Disabling an
account or resetting its password drops its open sessions at once.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ticker.constants import Keys
from ticker.exceptions import ClientError, NotFoundError, ValidationError
from ticker.intake.auth import ApiKey

__all__ = [
    "ROLES",
    "Account",
    "add_user",
    "check_password",
    "drop_sessions",
    "get_account",
    "list_users",
    "principal_of",
    "reset_password",
    "set_disabled",
]

# Roles, in the newsroom's words, and the API scopes each one carries.
ROLES: dict[str, frozenset[str]] = {
    "reporter": frozenset({"publish"}),
    "editor": frozenset({"publish", "correct", "retract"}),
    "chief": frozenset({"admin"}),  # editor-in-chief: everything, "Publish anyway" included
}
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
MIN_PASSWORD = 10
_HASHER = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) defaults
# Checked when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY = _HASHER.hash("not a password of anyone")


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: str
    editions: frozenset[str] | None
    disabled: bool

    @property
    def scopes(self) -> frozenset[str]:
        return ROLES.get(self.role, frozenset())

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "scopes": sorted(self.scopes),
            "editions": sorted(self.editions) if self.editions is not None else None,
            "disabled": self.disabled,
        }


def principal_of(account: Account) -> ApiKey:
    """The account as the intake's principal: audit entries name ``user:<name>``."""
    return ApiKey(f"user:{account.name}", b"", account.scopes, account.editions)


def _account(name: str, raw: dict[bytes, bytes]) -> Account:
    editions = raw.get(b"editions", b"").decode()
    return Account(
        name=name,
        role=raw.get(b"role", b"").decode(),
        editions=frozenset(editions.split(",")) if editions else None,
        disabled=raw.get(b"disabled") == b"1",
    )


def _check(
    name: str, role: str | None, editions: list[str] | None, allowed: tuple[str, ...]
) -> None:
    if not NAME.match(name):
        raise ValidationError("name must be 2-40 of a-z, 0-9, '.', '_', '-'", "name")
    if role is not None and role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}", "role")
    for edition in editions or ():
        if edition not in allowed:
            raise ValidationError(f"edition {edition!r} is not configured", "editions")


def _hash(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"password must be {MIN_PASSWORD} characters at least", "password")
    return _HASHER.hash(password)


async def add_user(
    redis: Any,
    keys: Keys,
    name: str,
    password: str,
    role: str,
    editions: list[str] | None,
    allowed: tuple[str, ...],
) -> Account:
    _check(name, role, editions, allowed)
    fields = {
        "role": role,
        "editions": ",".join(sorted(set(editions or ()))),
        "hash": await asyncio.to_thread(_hash, password),
        "disabled": "0",
    }
    if not await redis.hsetnx(keys.user(name), "role", role):
        raise ClientError(f"user {name!r} exists", "name", status=409, code="conflict")
    await redis.hset(keys.user(name), mapping=fields)
    await redis.sadd(keys.users, name)
    return _account(name, {k.encode(): v.encode() for k, v in fields.items()})


async def get_account(redis: Any, keys: Keys, name: str) -> Account | None:
    if not NAME.match(name):
        return None
    raw = await redis.hgetall(keys.user(name))
    return _account(name, raw) if raw else None


async def list_users(redis: Any, keys: Keys) -> list[Account]:
    names = sorted(n.decode() for n in await redis.smembers(keys.users))
    accounts = [await get_account(redis, keys, n) for n in names]
    return [a for a in accounts if a is not None]


async def drop_sessions(redis: Any, keys: Keys, name: str) -> int:
    """End every open console session of an account (sign-out everywhere)."""
    sids = [s.decode() for s in await redis.smembers(keys.user_sessions(name))]
    if sids:
        await redis.delete(*(keys.desk_session(s) for s in sids))
    await redis.delete(keys.user_sessions(name))
    return len(sids)


async def _require(redis: Any, keys: Keys, name: str) -> None:
    if not NAME.match(name) or not await redis.exists(keys.user(name)):
        raise NotFoundError(f"no user {name!r}", "name")


async def set_disabled(redis: Any, keys: Keys, name: str, disabled: bool) -> None:
    await _require(redis, keys, name)
    await redis.hset(keys.user(name), "disabled", "1" if disabled else "0")
    if disabled:
        await drop_sessions(redis, keys, name)


async def reset_password(redis: Any, keys: Keys, name: str, password: str) -> None:
    await _require(redis, keys, name)
    await redis.hset(keys.user(name), "hash", await asyncio.to_thread(_hash, password))
    await drop_sessions(redis, keys, name)


async def check_password(redis: Any, keys: Keys, name: str, password: str) -> Account | None:
    """The account if the name and password match and it is enabled; else None."""
    raw = await redis.hgetall(keys.user(name)) if NAME.match(name) else {}
    stored = raw.get(b"hash", b"").decode() or _DUMMY
    try:
        # argon2 is slow on purpose: off the event loop, so other requests go on.
        await asyncio.to_thread(_HASHER.verify, stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if not raw or raw.get(b"disabled") == b"1":
        return None
    return _account(name, raw)

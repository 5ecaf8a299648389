"""The development API key of ``ticker run``, kept in its data directory.

Made once and kept (mode 0600), so an open console tab still works after a
restart. The processes get only the path of a keys file holding its SHA-256
hash (``TICKER_API_KEYS_FILE``), never the key itself on a command line.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import orjson

from ticker.intake.auth import hash_key

__all__ = ["KEYS_FILE", "KEY_FILE", "DevKey", "dev_key"]

KEY_FILE = "dev-key"
KEYS_FILE = "dev-keys.json"
SCOPES = ["publish", "correct", "retract", "admin"]


@dataclass(frozen=True, slots=True)
class DevKey:
    key: str
    path: Path  # the key itself, for a person and the demo poster
    keys_file: Path  # TICKER_API_KEYS_FILE for the API
    created: bool  # made just now (print it once)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def dev_key(data_dir: Path) -> DevKey:
    """The data directory's key, made on first use."""
    path, keys_file = data_dir / KEY_FILE, data_dir / KEYS_FILE
    key = path.read_text().strip() if path.exists() else ""
    created = not key
    if created:
        key = "dev-" + secrets.token_urlsafe(18)
        _write_private(path, key.encode() + b"\n")
    else:
        os.chmod(path, 0o600)
    entry = {"name": "dev", "key_sha256": hash_key(key), "scopes": SCOPES}
    _write_private(keys_file, orjson.dumps([entry]))
    return DevKey(key, path, keys_file, created)

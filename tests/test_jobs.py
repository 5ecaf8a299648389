"""The one-step enqueue writes what arq's own ``enqueue_job`` writes, and a surprise in arq's
internals switches it to ``enqueue_job`` with one logged error, losing no job."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from arq.connections import ArqRedis
from arq.constants import job_key_prefix
from arq.jobs import deserialize_job

from ticker import jobs


async def _written(arq: ArqRedis, job_id: str, queue: str) -> tuple[object, ...]:
    """What a worker would read of the job: its call, its place on the queue, its lifetime."""
    job = deserialize_job(await arq.get(job_key_prefix + job_id))
    score = await arq.zscore(queue, job_id)
    ttl = await arq.pttl(job_key_prefix + job_id)
    return job.function, job.args, job.kwargs, job.job_try, score, round(ttl / 60_000)


async def test_one_step_writes_what_enqueue_job_writes(arq: ArqRedis) -> None:
    """Same call, same due time and lifetime as arq's own path; a repeated id is refused."""
    due = datetime.now(UTC) + timedelta(hours=2)
    assert jobs.fast_enqueue
    assert await jobs.enqueue(arq, "f", "x", 2, job_id="one", queue="q", defer_until=due)
    assert await arq.enqueue_job("f", "x", 2, _job_id="two", _queue_name="q", _defer_until=due)
    assert await _written(arq, "one", "q") == await _written(arq, "two", "q")
    assert not await jobs.enqueue(arq, "f", "x", 2, job_id="one", queue="q")
    # A result already held (the job ran) refuses the id too, as enqueue_job does.
    await arq.set("arq:result:done", b"x")
    assert not await jobs.enqueue(arq, "f", job_id="done", queue="q")


async def test_a_broken_internal_falls_back_to_enqueue_job(
    arq: ArqRedis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """arq's serializer changed under us: enqueue_job takes over for good, one error logged."""

    def changed(*args: object, **kwargs: object) -> bytes:
        raise TypeError("serialize_job() got an unexpected keyword argument")

    monkeypatch.setattr(jobs, "serialize_job", changed)
    monkeypatch.setattr(jobs, "fast_enqueue", True)
    with caplog.at_level(logging.ERROR, "ticker.jobs"):
        assert await jobs.enqueue(arq, "f", "a", job_id="j1", queue="q")
        assert await jobs.enqueue(arq, "f", "b", job_id="j2", queue="q")
        assert not await jobs.enqueue(arq, "f", "a", job_id="j1", queue="q")
    assert not jobs.fast_enqueue
    assert [r.message for r in caplog.records].count(
        "arq's internals are not as tested; enqueueing by enqueue_job"
    ) == 1
    for job_id, arg in (("j1", "a"), ("j2", "b")):
        function, args, *_ = await _written(arq, job_id, "q")
        assert (function, args) == ("f", (arg,))

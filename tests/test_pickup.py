"""The worker starts the jobs a poll finds in one step, as arq's start_jobs would start them
(checks, in-progress mark, run_job), and a surprise in arq's internals hands it back to
arq's own path with one logged error, losing no job."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix

import workers.pickup
from workers.pickup import Worker

QUEUE = "q"


async def record(ctx: dict[str, Any], n: int) -> int:
    ctx["ran"].append(n)  # each job's ctx is a copy of the worker's: the list is shared
    return n


def _worker(arq: ArqRedis, **options: Any) -> Worker:
    return Worker(
        functions=[record],  # type: ignore[list-item]
        redis_pool=arq,
        queue_name=QUEUE,
        burst=True,
        poll_delay=0,
        handle_signals=False,
        ctx={"ran": [], "redis": arq},
        **options,
    )


async def _queue(arq: ArqRedis, *ns: int, defer_by: float | None = None) -> None:
    for n in ns:
        await arq.enqueue_job("record", n, _job_id=f"j{n}", _queue_name=QUEUE, _defer_by=defer_by)


async def test_a_poll_starts_due_free_jobs_up_to_the_free_slots(arq: ArqRedis) -> None:
    """Held jobs (another worker's mark), jobs not yet due and jobs past the free slots are
    left; the others are marked in progress for arq's lifetime and run."""
    await _queue(arq, 1, 2, 3, 4)
    await _queue(arq, 5, defer_by=3600)
    await arq.set(in_progress_key_prefix + "j2", b"1", px=60_000)  # another worker's
    worker = _worker(arq, max_jobs=2)
    ids = await arq.zrangebyscore(QUEUE, "-inf", "+inf")
    await worker.start_jobs(ids)
    assert sorted(worker.tasks) == ["j1", "j3"]
    ttl = await arq.pttl(in_progress_key_prefix + "j1")
    assert worker.in_progress_timeout_s * 1000 - 5_000 < ttl <= worker.in_progress_timeout_s * 1000
    assert worker.job_counter == 2
    for task in list(worker.tasks.values()):
        await task
    assert sorted(worker.ctx["ran"]) == [1, 3]
    assert worker.job_counter == 0 and worker.claim_in_one_step


async def test_every_job_runs_once(arq: ArqRedis) -> None:
    """A burst worker with a few slots runs a queue of jobs, each once."""
    await _queue(arq, *range(20))
    worker = _worker(arq, max_jobs=3)
    await worker.main()
    assert sorted(worker.ctx["ran"]) == list(range(20))
    assert worker.jobs_complete == 20 and worker.claim_in_one_step


async def test_a_broken_internal_falls_back_to_arqs_start_jobs(
    arq: ArqRedis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """arq's internals changed under us: its own start_jobs takes over for good, one error
    logged, and every job still runs once."""

    async def changed(*args: object) -> object:
        raise TypeError("unexpected reply")  # as if arq's keys or replies had moved

    monkeypatch.setattr(workers.pickup, "lua", SimpleNamespace(run=changed))
    await _queue(arq, *range(5))
    worker = _worker(arq, max_jobs=3)
    with caplog.at_level(logging.ERROR, "ticker.worker"):
        await worker.main()
    assert sorted(worker.ctx["ran"]) == list(range(5))
    assert not worker.claim_in_one_step
    assert sum("not as tested" in r.getMessage() for r in caplog.records) == 1

"""arq's worker, starting the jobs one poll finds in one atomic step (``lua/claim.lua``).

arq starts a job with WATCH, EXISTS, ZSCORE and MULTI/PSETEX/EXEC: four round trips one
after the other, per job, each waiting for a turn of an event loop busy with the jobs
already running. With jobs of a few milliseconds the worker seldom held more than three or
four at once, and its throughput was the rate it could start them (docs/benchmarks.md,
"The duplicate decision"). The step makes the same checks and marks for every job a poll
found, up to the free slots, in one round trip; arq's own ``run_job`` runs each, as before.

It leans on arq's internals (the in-progress key, the slots' semaphore and counter,
``run_job``, ``tasks``), as tested with the arq range pinned in pyproject.toml
(tests/test_pickup.py). A surprise there (anything Redis does not explain) hands the worker
back to arq's own ``start_jobs`` for the rest of its life, with one logged error.
"""

from __future__ import annotations

import logging

from arq import worker as arq_worker
from redis.exceptions import RedisError

from ticker import lua

__all__ = ["Worker"]

log = logging.getLogger("ticker.worker")

# Job ids sent per free slot: past the jobs other workers hold at the head of the queue.
_LOOK_AHEAD = 4


class Worker(arq_worker.Worker):
    """arq's ``Worker``; only how a poll's jobs are started differs."""

    claim_in_one_step = True

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        if self.claim_in_one_step:
            try:
                await self._start_claimed(job_ids)
                return
            except RedisError:
                raise  # Redis's own failure: the worker restarts, as with arq's path
            except Exception:
                # Jobs taken before the surprise run; arq skips them (they are in progress).
                self.claim_in_one_step = False
                log.exception("arq's internals are not as tested; starting jobs as arq does")
        await super().start_jobs(job_ids)

    async def _start_claimed(self, job_ids: list[bytes]) -> None:
        free = self.max_jobs - self.job_counter
        # The jobs this worker runs stay on the queue until they end: not sent again.
        ids = [i for i in (j.decode() for j in job_ids) if i not in self.tasks]
        ids = ids[: free * _LOOK_AHEAD]
        if free <= 0 or not ids:
            return
        keys = [self.queue_name, *(arq_worker.in_progress_key_prefix + i for i in ids)]
        lifetime_ms = int(self.in_progress_timeout_s * 1000)
        now = arq_worker.timestamp_ms()
        taken = await lua.run(self.pool, "claim", len(keys), *keys, now, lifetime_ms, free, *ids)
        for raw_id, score in zip(taken[::2], taken[1::2], strict=True):
            await self.sem.acquire()  # a free slot: never waits
            self.job_counter += 1
            job_id = raw_id.decode()
            task = self.loop.create_task(self.run_job(job_id, int(float(score))))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task

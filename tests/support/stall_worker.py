"""`ticker worker`, with an ingest job that stops at a chosen point (fault tests only).

Run as ``python -m tests.support.stall_worker`` with the usual ``TICKER_*`` variables
plus ``STALL_DIR`` and ``STALL_AT``. When an ingest job reaches the point it
writes ``STALL_DIR/reached`` (its arq job id) and waits until ``STALL_DIR/go``
exists, so a test can kill or signal the worker at that exact point:

- ``start``: the job is taken (arq's in-progress mark is set), nothing done yet
  (arq's ``on_job_start`` hook, outside the job's timeout);
- ``inside``: inside the job function, before the publish step (cancellable,
  as a SIGTERM cancels it);
- ``end``: the event is published, arq has not yet recorded the job as done
  (its ``on_job_end`` hook).

Everything else is the production worker: ``workers.settings.run_worker``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from arq.worker import func

from ticker.config import Settings
from ticker.logs import configure_logging
from workers.ingest import ingest_item
from workers.worker import FUNCTIONS, run_worker

STALL_DIR = Path(os.environ["STALL_DIR"])
STALL_AT = os.environ["STALL_AT"]
assert STALL_AT in ("start", "inside", "end"), STALL_AT


async def stall(job_id: str) -> None:
    # Written whole, then renamed: the test waits for the name, then reads the id.
    (STALL_DIR / "reached.part").write_text(job_id)
    (STALL_DIR / "reached.part").replace(STALL_DIR / "reached")
    while not (STALL_DIR / "go").exists():  # noqa: ASYNC110 (set by another process)
        await asyncio.sleep(0.02)


async def stalled_ingest(ctx: dict[str, Any], item_id: str) -> str:
    if STALL_AT == "inside":
        await stall(ctx["job_id"])
    return await ingest_item(ctx, item_id)


async def hook(ctx: dict[str, Any]) -> None:
    if ctx["job_id"].startswith("ingest:"):
        await stall(ctx["job_id"])


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    functions = [func(stalled_ingest, name="ingest_item")] + [
        f for f in FUNCTIONS if f is not ingest_item
    ]
    hooks = {"start": {"on_job_start": hook}, "end": {"on_job_end": hook}}.get(STALL_AT, {})
    asyncio.run(run_worker(settings, functions=functions, **hooks))


if __name__ == "__main__":
    main()

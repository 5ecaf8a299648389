"""Where the worker's memory goes per item: a bounded probe (run on demand, not in CI).

Starts a private Redis, the API and a worker in this process (as the tests do), posts
``--items`` distinct headlines per phase through the intake for ``--phases`` phases,
and after each phase prints the traced memory, open descriptors and what the worker
holds: the story index, the word caches (functools caches of workers.vocab and
workers.matching, wordfreq's own) and arq's running tasks. At the end: the lines whose
memory grew most from the first phase to the last (tracemalloc), so what grows per
item shows against what fills once. ``--window`` is the dedupe window in seconds: keep
it short to see the story index hold steady rather than fill its hour.

``--caches N``: no service; the headlines' facts are extracted N x 2,000 times with
made-up words only, to show the word caches' ceiling (each holds at most 65,536).

    python scripts/worker_memory.py                                  # 5 x 1,000 items
    python scripts/worker_memory.py --items 2000 --phases 4 --window 20
    python scripts/worker_memory.py --caches 12
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.stack import Stack, auth, fresh_settings, running_stack
from ticker.embedded_redis import RedisProcess

PLACES = ["Jenin", "Gaza", "Kyiv", "Lagos", "Quito", "Lima", "Oslo", "Dhaka", "Basra", "Mosul"]
EVENTS = ["killed", "wounded", "arrested", "evacuated", "missing", "rescued", "detained"]
CAUSES = ["a blast", "a flood", "a fire", "clashes", "an earthquake", "a storm"]


def headline(i: int) -> str:
    """A distinct story each time, with one made-up word (a new name, as news brings)."""
    r = random.Random(i)
    name = "".join(r.choices("abcdefghijklmnopqrstuvwxyz", k=8)).title()
    return (
        f"{r.randint(2, 9999)} {r.choice(EVENTS)} in {r.choice(PLACES)} after "
        f"{r.choice(CAUSES)}, {name} says"
    )


async def post(stack: Stack, start: int, n: int) -> None:
    sem = asyncio.Semaphore(20)

    async def one(i: int) -> None:
        async with sem:
            body = {"headline": headline(i), "edition": "en"}
            r = await stack.http.post("/v1/items", json=body, headers=auth())
            assert r.status_code == 202, r.text

    await asyncio.gather(*(one(i) for i in range(start, start + n)))
    deadline = time.monotonic() + 600
    while await stack.redis.xlen(stack.keys.events) < start + n:
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not publish every item in 10 minutes")
        await asyncio.sleep(0.1)


def held() -> str:
    """What the worker holds, counted."""
    import wordfreq
    from arq.worker import Worker

    from workers import matching, vocab
    from workers.stories import Stories

    parts = []
    for o in gc.get_objects():
        if isinstance(o, Worker):
            parts.append(f"arq tasks {len(o.tasks)}")
        elif isinstance(o, Stories):
            parts.append(f"story index {len(o.index)}")
    caches = [
        f"{m.__name__.split('.')[-1]}.{name} {f.cache_info().currsize}"
        for m in (vocab, matching)
        for name, f in vars(m).items()
        if hasattr(f, "cache_info") and f.cache_info().maxsize not in (None, 1, 4, 8)
    ]
    return ", ".join([*parts, *caches, f"wordfreq {len(wordfreq._wf_cache)}"])


async def main(args: argparse.Namespace) -> None:
    server = RedisProcess()
    server.start()
    try:
        settings = fresh_settings(server.url, dedupe_window_seconds=args.window)
        async with running_stack(settings) as stack:
            await post(stack, 0, 200)  # warm up: word lists loaded, pools opened
            gc.collect()
            tracemalloc.start(1)
            snaps = []
            n = 200
            for phase in range(args.phases):
                started = time.monotonic()
                await post(stack, n, args.items)
                n += args.items
                gc.collect()
                snaps.append(tracemalloc.take_snapshot())
                traced = tracemalloc.get_traced_memory()[0] / 1e6
                fds = len(os.listdir("/proc/self/fd"))
                took = time.monotonic() - started
                print(f"phase {phase}: {n} items, traced {traced:.1f} MB, {fds} fds, {took:.0f} s")
                print(f"  {held()}", flush=True)
            print(f"\ngrowth from phase 0 to phase {args.phases - 1}, by line:")
            for stat in snaps[-1].compare_to(snaps[0], "lineno")[: args.top]:
                print(f"  {stat}")
    finally:
        server.close()


def fill_caches(steps: int) -> None:
    from workers.normalise import language_of
    from workers.stories import warm_up
    from workers.storyfacts import extract

    warm_up("en")
    gc.collect()
    tracemalloc.start(1)
    base = tracemalloc.get_traced_memory()[0]
    r = random.Random(1)

    def word() -> str:
        return "".join(r.choices("abcdefghijklmnopqrstuvwxyz", k=r.randint(4, 10)))

    for step in range(steps):
        for _ in range(2000):
            text = f"{word().title()} {word()} {word()} in {word().title()}, {word()} says"
            extract(text, language_of("en"))
        gc.collect()
        grown = (tracemalloc.get_traced_memory()[0] - base) / 1e6
        print(f"{(step + 1) * 2000} headlines: +{grown:.1f} MB; {held()}", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--items", type=int, default=1000, help="items posted per phase")
    p.add_argument("--phases", type=int, default=5)
    p.add_argument("--window", type=int, default=3600, help="dedupe window, seconds")
    p.add_argument("--top", type=int, default=15, help="lines of growth shown")
    p.add_argument("--caches", type=int, default=0, help="fill the word caches instead")
    args = p.parse_args()
    if args.caches:
        fill_caches(args.caches)
    else:
        asyncio.run(main(args))

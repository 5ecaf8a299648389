"""The Web Push encryption processes: RFC 8291 in batches beside the sender.

A process pool's workers wait on a queue whose pipe they hold both ends of, so
a sender killed outright (SIGKILL, the OOM killer) would leave them waiting
for ever; each one watches its parent and leaves when it is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from ticker.webpush.messages import seal_many

__all__ = ["encryption_pool", "seal_many"]

_WATCH_SECONDS = 1.0


def encryption_pool(processes: int) -> ProcessPoolExecutor:
    """``processes`` spawned encryption processes (spawn, not fork: the sender runs an event
    loop and threads), each leaving when this process is gone."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        processes, mp_context=context, initializer=_watch_parent, initargs=(os.getpid(),)
    )


def _watch_parent(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_WATCH_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()

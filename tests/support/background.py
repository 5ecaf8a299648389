"""The whole service on an event loop in a background thread, for synchronous tests.

Hypothesis's ``@given`` and schemathesis drive synchronous test functions many times over;
running the stack on its own loop lets every example talk to one real server over real
sockets, while the test thread calls :meth:`BackgroundStack.run` for anything async.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from tests.support.stack import Stack, running_stack
from ticker.config import Settings

__all__ = ["BackgroundStack"]

T = TypeVar("T")


class BackgroundStack:
    """Starts ``running_stack(settings)`` on a private loop; ``run()`` awaits on that loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="stack", daemon=True)
        self._cm: contextlib.AbstractAsyncContextManager[Stack] | None = None
        self.stack: Stack | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the stack's loop and return its result (or raise its error)."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def __enter__(self) -> Stack:
        self.thread.start()
        self._cm = running_stack(self.settings)
        self.stack = self.run(self._cm.__aenter__())
        return self.stack

    def __exit__(self, *exc: object) -> None:
        try:
            if self._cm is not None:
                self.run(self._cm.__aexit__(None, None, None), 60)
            self.run(_drain(), 10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


async def _drain() -> None:
    """Cancel whatever is still running on the loop (stray client tasks) before it stops."""
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

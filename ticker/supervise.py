"""`ticker serve --workers N`: keep N API processes alive on one port.

A child that dies is started again after a backoff (doubling from
``TICKER_RESTART_BACKOFF_SECONDS``); each restart is logged and counted
(``ticker_process_restarts_total{role="api"}``, summed into every child's
/metrics). A crash loop (``TICKER_RESTART_LIMIT`` deaths within
``TICKER_RESTART_WINDOW_SECONDS``) stops the rest and exits 1, so systemd or
the orchestrator takes over. SIGTERM/SIGINT are passed on: each child drains
its streams (ticker.server.TickerServer) and the supervisor exits 0.

Why not uvicorn's ``Multiprocess`` or gunicorn: uvicorn's supervisor starts
children with multiprocessing's *spawn*, pickling the ``uvicorn.Config``; ours
holds the app object and the fast lane's protocol class built at runtime
(ticker.serve.fastlane), and its children run a plain ``uvicorn.Server`` (hard-wired in
``uvicorn.supervisors.multiprocess.Process``), so the stream drain of
``TickerServer`` on SIGTERM would be lost. It also restarts without backoff, never
gives up on a crash loop (only on a startup failure), and offers no hook to count
restarts. gunicorn (a new dependency) would need its uvicorn worker class
subclassed for the protocol classes and the drain, and its arbiter likewise
restarts without backoff and halts only on boot errors. What is left is small:
spawn ``ticker serve --child`` (each binds the port with SO_REUSEPORT), wait,
restart, count.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ticker.config import Settings
from ticker.exceptions import CrashLoop
from ticker.retries import backoff_step

__all__ = ["STATE_ENV", "RestartPolicy", "supervise_api", "supervised_processes"]

log = logging.getLogger("ticker.supervisor")

# Where the supervisor tells its children how many of them are alive (for /readyz).
STATE_ENV = "TICKER_SUPERVISOR_STATE"


def supervised_processes() -> dict[str, int] | None:
    """The supervisor's last word (expected, alive, restarts), or None if unsupervised."""
    path = os.environ.get(STATE_ENV)
    if not path:
        return None
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return {k: int(doc[k]) for k in ("expected", "alive", "restarts") if k in doc}


class RestartPolicy:
    """Pure bookkeeping: after a death at ``now``, how long to wait, or CrashLoop."""

    def __init__(self, limit: int, window: float, backoff: float, backoff_max: float) -> None:
        self.limit, self.window = limit, window
        self.backoff, self.backoff_max = backoff, backoff_max
        self.deaths: collections.deque[float] = collections.deque()

    def died(self, now: float) -> float:
        self.deaths.append(now)
        while self.deaths and self.deaths[0] < now - self.window:
            self.deaths.popleft()
        recent = len(self.deaths)
        if recent >= self.limit:
            raise CrashLoop(f"{recent} deaths within {self.window:g}s")
        return float(backoff_step(recent, self.backoff, self.backoff_max))


class _Slot:
    """One child process, or the time its replacement is due."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: subprocess.Popen[bytes] | None = None
        self.due = 0.0


def _restart_counter() -> Callable[[], None]:
    """``ticker_process_restarts_total{role="api"}`` in the shared metrics directory.

    prometheus_client picks file-backed values when its module is imported; the
    CLI imported it before the directory existed, so choose again here.
    """
    from prometheus_client import Counter, values

    values.ValueClass = values.get_value_class()
    counter = Counter(
        "ticker_process_restarts", "Dead processes the supervisor restarted.", ["role"]
    )
    child = counter.labels("api")
    child.inc(0)
    return child.inc


def _forget_metrics(pid: int) -> None:
    """A killed child cannot remove its live gauges (open connections): do it for it."""
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):  # nothing of it there
        multiprocess.mark_process_dead(pid)


def _die_with_parent() -> None:
    """In the child, before exec: a SIGTERM (drain) if the supervisor is killed -9,
    rather than orphans serving on after systemd started a new supervisor (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def supervise_api(settings: Settings) -> int:
    """Run ``settings.workers`` children until signalled (0) or a crash loop (1)."""
    cmd = [sys.executable, "-m", "ticker", "serve", "--child"]
    with tempfile.TemporaryDirectory(prefix="ticker-metrics-") as metrics_dir:
        # Every process writes its metrics here, so any of them can answer a scrape.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        state = Path(metrics_dir) / "supervisor.json"
        os.environ[STATE_ENV] = str(state)
        policy = RestartPolicy(
            settings.restart_limit,
            settings.restart_window_seconds,
            settings.restart_backoff_seconds,
            settings.restart_backoff_max_seconds,
        )
        return _Supervisor(cmd, settings.workers, policy, state).run()


class _Supervisor:
    def __init__(self, cmd: list[str], n: int, policy: RestartPolicy, state: Path) -> None:
        self.cmd, self.policy, self.state = cmd, policy, state
        self.slots = [_Slot(i) for i in range(n)]
        self.stopping: list[int] = []
        self.restarts = 0
        self.count_restart = _restart_counter()

    def run(self) -> int:
        def stop(signum: int, frame: object) -> None:
            self.stopping.append(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        for slot in self.slots:
            self._start(slot)
        self._write_state()
        code = 0
        try:
            while not self.stopping:
                self._tick(time.monotonic())
                time.sleep(0.05)  # a signal cuts this short
        except CrashLoop as exc:
            log.error("API processes are crash-looping (%s); stopping the rest", exc)
            code = 1
        return self._stop_all(code)

    def _tick(self, now: float) -> None:
        changed = False
        for slot in self.slots:
            if slot.proc is None:
                if now >= slot.due and not self.stopping:
                    self._start(slot)
                    self.restarts += 1
                    self.count_restart()
                    changed = True
                continue
            rc = slot.proc.poll()
            if rc is None:
                continue
            pid = slot.proc.pid
            slot.proc = None
            _forget_metrics(pid)
            changed = True
            delay = self.policy.died(now)  # may raise CrashLoop
            slot.due = now + delay
            log.warning(
                "API process %d died (exit %s); restarting in %.2fs",
                pid,
                rc,
                delay,
                extra={"pid": pid, "exit_code": rc, "restart_in": delay},
            )
        if changed:
            self._write_state()

    def _start(self, slot: _Slot) -> None:
        slot.proc = subprocess.Popen(self.cmd, env=dict(os.environ), preexec_fn=_die_with_parent)
        log.info("API process %d started (slot %d)", slot.proc.pid, slot.index)

    def _write_state(self) -> None:
        doc = {
            "expected": len(self.slots),
            "alive": sum(s.proc is not None for s in self.slots),
            "restarts": self.restarts,
        }
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.state)  # atomic: a reader never sees half of it

    def _stop_all(self, code: int) -> int:
        procs = [s.proc for s in self.slots if s.proc is not None]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            rc = p.wait()
            # uvicorn re-raises the SIGTERM we passed on once it has shut down cleanly.
            if rc not in (0, -signal.SIGTERM) and not code:
                code = rc if rc > 0 else 1
        return code

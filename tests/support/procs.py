"""Real processes for the scale-out tests: API and worker subprocesses
(`python -m ticker serve|worker`) configured by TICKER_* variables.

Everything binds loopback on free ports; Redis topologies are in tests/topologies.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import API_KEYS
from ticker.embedded_redis import free_port

__all__ = ["ApiProcess", "WorkerProcess", "running", "service_env", "wait_until"]

ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    """Blocking poll (for process setup outside the event loop)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last!r})")


def service_env(**settings: str) -> dict[str, str]:
    """The environment of an API or worker process: test keys, fast catch-up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
    env.update(
        TICKER_API_KEYS=API_KEYS,
        TICKER_WORKER_POLL_DELAY="0.01",
        TICKER_CATCHUP_SECONDS="1",
        TICKER_LOG_LEVEL="warning",
        PYTHONPATH=str(ROOT),
    )
    env.update({f"TICKER_{k.upper()}": v for k, v in settings.items()})
    return env


class _Proc:
    args: list[str]

    def __init__(self, env: dict[str, str], name: str) -> None:
        self.env = env
        # The process's output, kept for failure messages; removed by stop().
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix=f"ticker-{name}-", suffix=".log", delete=False
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ticker", *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """kill -9: no shutdown hook runs, clients see their connection drop."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        with contextlib.suppress(OSError):
            os.unlink(self.log.name)


class ApiProcess(_Proc):
    """`python -m ticker serve` on its own port; ready when /readyz says so."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env, "api")
        self.port = free_port()
        self.args = ["serve", "--host", "127.0.0.1", "--port", str(self.port)]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ApiProcess:
        self.spawn()

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"API exited:\n{self.output()}")
            return httpx.get(self.base + "/readyz", timeout=2).status_code == 200

        wait_until(ready, timeout, f"API on {self.port} to be ready")
        return self


class WorkerProcess(_Proc):
    """`python -m ticker worker`."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env, "worker")
        self.args = ["worker"]

    def start(self) -> WorkerProcess:
        self.spawn()
        return self


@contextlib.contextmanager
def running(*procs: _Proc) -> Iterator[None]:
    """Stop the processes (even half-started ones) when the block ends; on a
    failure, print their output (pytest shows it with the failure)."""
    try:
        yield
    except BaseException:
        for p in procs:
            print(f"--- {' '.join(p.args)} ---\n{p.output()}")
        raise
    finally:
        for p in procs:
            p.stop()

"""The service's roles as real subprocesses (`python -m ticker serve|worker`),
configured by TICKER_* variables, for the scale-out, fault and shutdown tests;
and the API alone in this loop with its worker not started (``bare_stack``).

Everything binds loopback on free ports; Redis topologies are in topologies.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Self

import httpx
from arq.connections import ArqRedis
from arq.jobs import Job, JobResult

from tests.support.helpers import wait_for, wait_until
from tests.support.stack import API_KEYS, Api, Stack, WorkerRunner
from ticker.config import Settings
from ticker.embedded_redis import free_port

__all__ = [
    "ApiProcess",
    "Proc",
    "WorkerProcess",
    "bare_stack",
    "events_for",
    "job_result",
    "running",
    "service_env",
    "stall_worker",
]

ROOT = Path(__file__).resolve().parents[2]


def service_env(redis_url: str | None = None, **settings: object) -> dict[str, str]:
    """The environment of an API or worker process: the test keys, a quick worker
    poll, quiet logs, and TICKER_* from the keyword arguments."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
    env.update(
        TICKER_API_KEYS=API_KEYS,
        TICKER_WORKER_POLL_DELAY="0.01",
        TICKER_LOG_LEVEL="warning",
        PYTHONPATH=str(ROOT),
    )
    if redis_url is not None:
        env["TICKER_REDIS_URL"] = redis_url
    env.update({f"TICKER_{k.upper()}": str(v) for k, v in settings.items()})
    return env


class Proc:
    """One `python <args>` subprocess. Its output (stdout and stderr) goes to ``log``,
    else to a temporary file removed by ``stop``; ``running`` prints it when the
    test fails."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path | None = None) -> None:
        self.args = args
        self.env = env
        self.log_path = log
        self.log = (
            log.open("wb")
            if log is not None
            else tempfile.NamedTemporaryFile(prefix="ticker-proc-", suffix=".log", delete=False)  # noqa: SIM115
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> Self:
        self.proc = subprocess.Popen(
            [sys.executable, *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return self

    def start(self) -> Self:
        return self.spawn()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """kill -9: no shutdown hook runs, clients see their connection drop."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    async def wait_exit(self, timeout: float) -> int:
        proc = self.proc
        assert proc is not None
        await wait_for(lambda: proc.poll() is not None, timeout, what="the process to exit")
        return proc.returncode

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self.log_path is None:
            with contextlib.suppress(OSError):
                os.unlink(self.log.name)


class ApiProcess(Proc):
    """`python -m ticker serve` on its own port; ready when /readyz says so."""

    def __init__(
        self, env: dict[str, str], port: int | None = None, workers: int | None = None
    ) -> None:
        self.port = port or free_port()
        args = ["-m", "ticker", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if workers is not None:
            args += ["--workers", str(workers)]
        super().__init__(args, env)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Self:
        """Spawn, and block until it is ready (for setup outside the event loop)."""
        self.spawn()
        wait_until(self._answers, timeout, what=f"the API on {self.port} to be ready")
        return self

    async def ready(self, timeout: float = 20.0) -> None:
        """Wait, in the event loop, until the spawned API is ready."""

        async def answers() -> bool:
            async with httpx.AsyncClient(timeout=2) as c:
                return (await c.get(self.base + "/readyz")).status_code == 200

        await wait_for(
            answers, timeout, interval=0.1, what="the API process to be ready", errors=(Exception,)
        )

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"API exited:\n{self.output()}")
        return httpx.get(self.base + "/readyz", timeout=2).status_code == 200


class WorkerProcess(Proc):
    """`python -m ticker worker`."""

    def __init__(self, env: dict[str, str], log: Path | None = None) -> None:
        super().__init__(["-m", "ticker", "worker"], env, log)


def stall_worker(env: dict[str, str], stall_dir: Path, at: str) -> Proc:
    """A worker that stalls inside its job (tests/support/stall_worker.py), not started."""
    return Proc(
        ["-m", "tests.support.stall_worker"],
        {**env, "STALL_DIR": str(stall_dir), "STALL_AT": at},
    )


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[list[Proc]]:
    """Stop the processes (given, or appended to the list it yields; even half-started
    ones) when the block ends; on a failure, print their output (pytest shows it)."""
    started = list(procs)
    try:
        yield started
    except BaseException:
        for p in started:
            print(f"--- {' '.join(p.args)} ---\n{p.output()}")
        raise
    finally:
        for p in started:
            p.stop()


@contextlib.asynccontextmanager
async def bare_stack(settings: Settings) -> AsyncIterator[Stack]:
    """The API in this loop, with its worker not started (tests start their own)."""
    api = Api(settings)
    await api.start()
    redis = ArqRedis.from_url(settings.redis_url)
    http = httpx.AsyncClient(base_url=api.base, timeout=10)
    try:
        yield Stack(settings, api, WorkerRunner(settings), http, redis)
    finally:
        await http.aclose()
        await redis.aclose()
        await api.stop()


async def job_result(stack: Stack, job_id: str, timeout: float) -> JobResult:
    """Wait until arq has recorded the job as done; its result."""
    job = Job(job_id, stack.redis, _queue_name=stack.keys.queue)  # type: ignore[arg-type]
    found: list[JobResult] = []

    async def done() -> bool:
        info = await job.result_info()
        if info is not None:
            found.append(info)
        return info is not None

    await wait_for(done, timeout, interval=0.1, what=f"job {job_id} to be done")
    return found[0]


async def events_for(stack: Stack, item_id: str) -> list[str]:
    """Stream ids of every event about one item."""
    return [
        i.decode() for i, fields in await stack.events() if fields.get(b"item") == item_id.encode()
    ]

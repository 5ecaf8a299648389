"""For the fault and shutdown tests: the service's roles as real subprocesses
(`python -m ticker serve|worker`), and the API alone with no worker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
from arq.connections import ArqRedis
from arq.jobs import Job, JobResult

from tests.conftest import API_KEYS, Api, Stack, WorkerRunner
from tests.support.helpers import wait_for
from ticker.config import Settings
from ticker.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]


def service_env(redis_url: str, **settings: object) -> dict[str, str]:
    """The environment of a subprocess: TICKER_* from keyword arguments."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
    env.update(
        TICKER_REDIS_URL=redis_url,
        TICKER_API_KEYS=API_KEYS,
        TICKER_WORKER_POLL_DELAY="0.01",
        TICKER_LOG_LEVEL="warning",
        PYTHONPATH=str(ROOT),
    )
    env.update({f"TICKER_{k.upper()}": str(v) for k, v in settings.items()})
    return env


class Proc:
    """One subprocess; stopped (killed if it must be) when the test ends."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path | None = None) -> None:
        # ``log``: the process's stderr (its JSON log lines) goes to this file.
        self.log = log.open("wb") if log is not None else None
        self.proc = subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT, stderr=self.log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    async def wait_exit(self, timeout: float) -> int:
        await wait_for(lambda: self.proc.poll() is not None, timeout, what="the process to exit")
        return self.proc.returncode

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()


@contextlib.contextmanager
def procs() -> Iterator[list[Proc]]:
    """Collects the processes a test starts and stops them all at the end."""
    started: list[Proc] = []
    try:
        yield started
    finally:
        for p in started:
            p.stop()


def worker(env: dict[str, str], log: Path | None = None) -> Proc:
    return Proc(["-m", "ticker", "worker"], env, log)


def stall_worker(env: dict[str, str], stall_dir: Path, at: str) -> Proc:
    return Proc(
        ["-m", "tests.support.stall_worker"],
        {**env, "STALL_DIR": str(stall_dir), "STALL_AT": at},
    )


class Serve(Proc):
    """`python -m ticker serve` on a free port."""

    def __init__(self, env: dict[str, str], port: int | None = None, workers: int = 1) -> None:
        self.port = port or free_port()
        args = ["-m", "ticker", "serve", "--port", str(self.port), "--workers", str(workers)]
        super().__init__(args, env)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, timeout: float = 20.0) -> None:
        async def answers() -> bool:
            try:
                async with httpx.AsyncClient(timeout=2) as c:
                    return (await c.get(self.base + "/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(answers, timeout, interval=0.1, what="the API process to be ready")


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

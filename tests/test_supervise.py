"""`ticker serve --workers N` keeps its processes alive: a killed child is replaced
and counted, a crash loop ends the supervisor with a non-zero status.

Real processes: the supervisor and its children are `python -m ticker serve`
subprocesses on a real port, killed with SIGKILL for real.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.support.helpers import wait_for
from tests.support.procs import ApiProcess, Proc, running, service_env
from ticker.config import Settings
from ticker.embedded_redis import free_port
from ticker.exceptions import CrashLoop
from ticker.supervise import RestartPolicy


def children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        out |= {int(c) for c in (task / "children").read_text().split()}
    return out


def listening(pid: int, port: int) -> bool:
    """Whether the process has a socket listening on the port (a child listens once
    its app has started)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port and cols[9] in inodes:
            return True
    return False


async def restarts(base: str) -> float | None:
    """ticker_process_restarts_total{role="api"} as any child reports it."""
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(base + "/metrics")).text
    except httpx.HTTPError:
        return None
    found = re.search(r'^ticker_process_restarts_total\{role="api"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else None


async def readyz(base: str) -> tuple[int, dict[str, object]]:
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            r = await http.get(base + "/readyz")
            return r.status_code, r.json()
    except (httpx.HTTPError, ValueError):
        return 0, {}


def test_restart_policy_backs_off_and_calls_a_crash_loop() -> None:
    """Each death within the window doubles the wait (up to the cap); the limit-th
    death within the window is a crash loop; deaths older than the window are forgotten."""
    policy = RestartPolicy(limit=4, window=60, backoff=0.5, backoff_max=1.5)
    assert [policy.died(t) for t in (0, 1, 2)] == [0.5, 1.0, 1.5]
    assert policy.died(100) == 0.5  # the first three are over a minute old
    policy.died(101)
    policy.died(102)
    with pytest.raises(CrashLoop):
        policy.died(103)


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_a_killed_api_process_is_replaced_and_counted(settings: Settings) -> None:
    """After kill -9 of one child of `ticker serve --workers 2` the supervisor starts a
    new one, which listens once started and serves (it answers alone while the other old
    child is down), the restart counter on /metrics goes up and /readyz says so."""
    # A long backoff for the second death, so the new child answers alone for a while.
    env = service_env(settings.redis_url, restart_backoff_seconds=3)
    with running() as started:
        api = ApiProcess(env, workers=2).spawn()
        started.append(api)
        await api.ready(timeout=180)
        assert await restarts(api.base) == 0
        old = children(api.pid)
        assert len(old) == 2
        first, second = sorted(old)
        os.kill(first, signal.SIGKILL)

        async def replaced() -> bool:
            status, body = await readyz(api.base)
            kids = children(api.pid)
            return (
                status == 200
                and body.get("processes") == {"expected": 2, "alive": 2, "restarts": 1}
                and len(kids) == 2
                and first not in kids
            )

        await wait_for(replaced, 60, interval=0.2, what="a new child and /readyz saying so")
        new = (children(api.pid) - old).pop()
        await wait_for(lambda: listening(new, api.port), 180, interval=0.2, what="it to listen")
        await wait_for(_counter_is(api.base, 1), 60, interval=0.2, what="the restart counted")
        # The other old child goes too: whatever answers now is the new one.
        os.kill(second, signal.SIGKILL)

        async def new_child_answers() -> bool:
            status, body = await readyz(api.base)
            return status == 200 and body.get("processes", {}).get("alive") == 1  # type: ignore[union-attr]

        await wait_for(new_child_answers, 30, interval=0.1, what="the new child to serve alone")
        assert new in children(api.pid)
        await wait_for(_counter_is(api.base, 2), 60, interval=0.2, what="the second restart")
        api.signal(signal.SIGTERM)
        assert await api.wait_exit(30) == 0


def _counter_is(base: str, value: float):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await restarts(base) == value

    return check


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_a_crash_loop_stops_the_supervisor_with_status_1(
    settings: Settings, tmp_path: Path
) -> None:
    """Children that die as soon as they start (their port is taken) are restarted with
    backoff until the limit, then the supervisor logs the crash loop and exits 1."""
    port = free_port()
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # free_port keeps it bound
    taken.bind(("127.0.0.1", port))  # no SO_REUSEPORT: every child's bind fails
    taken.listen()
    env = service_env(settings.redis_url, restart_limit=3, log_level="info")
    try:
        with running() as started:
            args = ["-m", "ticker", "serve", "--port", str(port), "--workers", "2"]
            sup = Proc(args, env, log=tmp_path / "serve.log").spawn()
            started.append(sup)
            assert await sup.wait_exit(120) == 1
        log = (tmp_path / "serve.log").read_text()
        assert "crash-looping" in log and "restarting in" in log
        assert "Traceback" not in log.split("crash-looping")[-1]
    finally:
        taken.close()

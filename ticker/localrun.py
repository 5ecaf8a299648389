"""``ticker run``: a private Redis, the API, a worker (and demo items) on one machine.

Before anything starts or prints, the data directory is locked against a
second instance and both ports are checked; a problem is one line naming the
flag that changes it. The private Redis must answer as the process started
here (ticker.embedded_redis), never as another Redis on the port. When any
process ends, the others are stopped and its exit status is the run's.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

from ticker.children import Children, Stopped, exit_status, stop_signals
from ticker.exceptions import ConfigError

__all__ = ["LOCK_FILE", "RunError", "check_port", "lock_data_dir", "redact", "run"]

LOCK_FILE = "ticker.lock"


class RunError(Exception):
    """A one-line reason ``ticker run`` cannot start."""


def check_port(host: str, port: int, flag: str, what: str) -> None:
    """RunError unless ``port`` on ``host`` can be listened on now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As the server binds (ticker.server.bind): a closed port in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise RunError(
                    f"port {port} on {host} ({what}) is in use; choose another with {flag}"
                ) from None
            reason = exc.strerror or str(exc)
            raise RunError(f"cannot listen on {host}:{port} ({what}): {reason}") from None


@contextlib.contextmanager
def lock_data_dir(data_dir: Path) -> Iterator[IO[str]]:
    """Hold an exclusive lock on the data directory while the block runs."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fh = open(data_dir / LOCK_FILE, "a+")  # noqa: SIM115
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            raise RunError(
                f"data directory {data_dir} is in use by another ticker run (pid {holder}); "
                "stop it or choose another with --data-dir"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        yield fh
    finally:
        fh.close()


def redact(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def log_format(chosen: str) -> str:
    """``auto``: short lines for a person at a terminal, JSON for anything else."""
    if chosen != "auto":
        return chosen
    return "human" if sys.stdout.isatty() else "json"


def run(args: argparse.Namespace) -> int:
    try:
        with lock_data_dir(Path(args.data_dir)):
            return _run(args)
    except RunError as exc:
        print(f"ticker run: {exc}", file=sys.stderr, flush=True)
        return 1


def _run(args: argparse.Namespace) -> int:
    from ticker.devkey import dev_key
    from ticker.embedded_redis import RedisProcess, free_port

    data_dir = Path(args.data_dir)
    env = dict(os.environ)
    private = not env.get("TICKER_REDIS_URL") and not env.get("TICKER_REDIS_URL_FILE")
    check_port(args.host, args.port, "--port", "the API")
    redis_port = args.redis_port or free_port()
    if private:
        check_port("127.0.0.1", redis_port, "--redis-port", "the private Redis")
    key = None
    if not env.get("TICKER_API_KEYS") and not env.get("TICKER_API_KEYS_FILE"):
        key = dev_key(data_dir)
        env["TICKER_API_KEYS_FILE"] = str(key.keys_file)
    env.update(
        TICKER_HOST=args.host,
        TICKER_PORT=str(args.port),
        TICKER_LOG_FORMAT=log_format(args.log_format),
        TICKER_LOG_LEVEL=args.log_level,
    )
    children = Children()
    redis = (
        RedisProcess(port=redis_port, data_dir=data_dir, appendonly=True, tied=True)
        if private
        else None
    )
    try:
        with stop_signals():
            if redis is not None:
                try:
                    redis.start()
                except ConfigError as exc:
                    raise RunError(f"the private Redis did not start: {exc}") from None
                assert redis.proc is not None
                children.adopt("redis-server", redis.proc)
                env["TICKER_REDIS_URL"] = redis.url
            _start(children, args, env, key)
            name, code = children.wait_first()
    except Stopped:
        return 0
    finally:
        children.stop(skip=frozenset({"redis-server"}))
        if redis is not None:
            redis.close()
    print(
        f"ticker run: {name} exited with status {exit_status(code)}; stopped the others",
        file=sys.stderr,
        flush=True,
    )
    return exit_status(code) or 1


def _start(children: Children, args: argparse.Namespace, env: dict[str, str], key: object) -> None:
    from ticker.devkey import DevKey

    base = f"http://{args.host}:{args.port}"
    py = sys.executable
    children.spawn("the API (ticker serve)", [py, "-m", "ticker", "serve"], env)
    children.spawn("the worker (ticker worker)", [py, "-m", "ticker", "worker"], env)
    shown = redact(env.get("TICKER_REDIS_URL", "from TICKER_REDIS_URL_FILE"))
    lines = [
        f"\nTicker is starting (Redis: {shown})",
        f"  demo page      {base}/",
        f"  editor console {base}/console",
        f"  SSE stream     {base}/v1/stream",
        f"  WebSocket      ws://{base[7:]}/v1/ws",
    ]
    if isinstance(key, DevKey):
        if key.created:
            lines.append(f"  dev API key    {key.key}  (kept in {key.path})")
        else:
            lines.append(f"  dev API key    in {key.path}")
    lines.append("Press Ctrl-C to stop.\n")
    print("\n".join(lines), flush=True)
    if args.demo:
        demo = [py, "-m", "ticker.demo", "--base", base, "--every", str(args.demo_every)]
        if isinstance(key, DevKey):
            demo += ["--key-file", str(key.path)]  # the path, never the key
        children.spawn("the demo poster", demo, env)

"""The `ticker` command: run everything locally, or one role for production."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from ticker import __version__
from ticker.config import Settings
from ticker.exceptions import ConfigError
from ticker.helpformat import HelpFormatter
from ticker.logs import configure_logging

__all__ = ["COMMANDS", "Command", "main", "parser"]


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: ``configure`` adds its options, ``run`` does it (exit status).

    A command with ``passthrough`` parses the rest of the line itself.
    """

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    passthrough: Callable[[list[str]], int] | None = None


def _env(name: str, default: str) -> str:
    """An option's default: its TICKER_* variable when set (shown by --help)."""
    return os.environ.get(f"TICKER_{name.upper()}") or default


def _log_options(p: argparse.ArgumentParser, fmt_default: str, auto: bool = False) -> None:
    p.add_argument(
        "--log-level",
        default=_env("log_level", "info"),
        choices=["debug", "info", "warning", "error"],
        help="least severe log lines shown (TICKER_LOG_LEVEL)",
    )
    formats = ["auto", "json", "human"] if auto else ["json", "human"]
    p.add_argument(
        "--log-format",
        default=_env("log_format", fmt_default),
        choices=formats,
        help="json: one object per line; human: short lines"
        + ("; auto: human on a terminal, else json" if auto else "")
        + " (TICKER_LOG_FORMAT)",
    )


def _configure_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--demo", action="store_true", help="play a newsroom afternoon of items")
    p.add_argument("--demo-every", type=float, default=8.0, help="seconds per demo beat")
    p.add_argument("--host", default=_env("host", "127.0.0.1"), help="API address (TICKER_HOST)")
    p.add_argument("--port", type=int, default=_env("port", "8000"), help="API port (TICKER_PORT)")
    p.add_argument(
        "--redis-port",
        type=int,
        default=0,
        help="port of the private Redis; 0 picks a free one (unused with TICKER_REDIS_URL)",
    )
    p.add_argument(
        "--data-dir",
        default=".ticker-data",
        help="the private Redis's data and the development API key; one run at a time",
    )
    _log_options(p, "auto", auto=True)


def _run(args: argparse.Namespace) -> int:
    from ticker.localrun import run

    return run(args)


def _configure_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=_env("host", "127.0.0.1"), help="address (TICKER_HOST)")
    p.add_argument("--port", type=int, default=_env("port", "8000"), help="port (TICKER_PORT)")
    p.add_argument(
        "--workers",
        type=int,
        default=_env("workers", "1"),
        help="API processes sharing the port (TICKER_WORKERS)",
    )
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    _log_options(p, "json")


def _apply_log_options(args: argparse.Namespace) -> None:
    os.environ["TICKER_LOG_LEVEL"] = args.log_level
    os.environ["TICKER_LOG_FORMAT"] = args.log_format


def _serve(args: argparse.Namespace) -> int:
    env = os.environ
    env["TICKER_HOST"] = args.host
    env["TICKER_PORT"] = str(args.port)
    env["TICKER_WORKERS"] = str(args.workers)
    _apply_log_options(args)
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    if not args.child:  # once per service, not once per process
        from ticker.serve.proxytrust import warn_if_trusting_everyone

        warn_if_trusting_everyone(settings, env)
    if settings.workers > 1 and not args.child:
        return _supervise_api(settings)
    from ticker.app import create_app
    from ticker.serve.server import TickerServer, bind, server_config, tune_gc

    app = create_app(settings)
    try:
        sock = bind(
            settings.host,
            settings.port,
            reuse_port=args.child or settings.workers > 1,
            listen=not args.child,  # a supervised child listens once it can serve
        )
    except OSError as exc:
        print(
            f"ticker serve: cannot listen on {settings.host}:{settings.port}: "
            f"{exc.strerror or exc}; choose another with --port",
            file=sys.stderr,
        )
        return 1
    server = TickerServer(server_config(app, settings, log_config=None), app)
    tune_gc()
    server.run(sockets=[sock])
    return 0


def _supervise_api(settings: Settings) -> int:
    """One API process per worker, sharing the port with SO_REUSEPORT, restarted if one dies."""
    from ticker.supervise import supervise_api

    configure_logging(settings.log_level)
    return supervise_api(settings)


def _wait_all(procs: list[subprocess.Popen[bytes]]) -> int:
    stopping = []

    def stop(signum: int, frame: object) -> None:
        stopping.append(signum)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    for p in procs:
        rc = p.wait()
        # uvicorn re-raises the SIGTERM we passed on once it has shut down cleanly.
        if stopping and rc == -signal.SIGTERM:
            rc = 0
        code = rc or code
    return code


def _configure_worker(p: argparse.ArgumentParser) -> None:
    _log_options(p, "json")


def _worker(args: argparse.Namespace) -> int:
    from workers.worker import run_worker

    _apply_log_options(args)
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    # uvloop (uvicorn[standard] brings it, and the API serves on it) where installed: a job
    # is mostly Redis round trips, whose socket writes cost asyncio's pure Python loop more.
    try:
        import uvloop
    except ImportError:
        asyncio.run(run_worker(settings))
    else:
        uvloop.run(run_worker(settings))
    return 0


def _configure_doctor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for Redis to answer")


def _doctor(args: argparse.Namespace) -> int:
    from ticker.doctor import main as doctor_main

    return doctor_main(args.timeout)


def _bridge(argv: list[str]) -> int:
    from ticker.client.bridge import main as bridge_main

    return bridge_main(argv)


def _users(argv: list[str]) -> int:
    from ticker.users_cli import main as users_main

    return users_main(argv)


def _no_options(p: argparse.ArgumentParser) -> None:
    pass


# The subcommands, in the order `ticker --help` lists them; another is one entry.
COMMANDS: list[Command] = [
    Command(
        "run",
        "everything on this machine: a private Redis, the API, a worker",
        _configure_run,
        _run,
    ),
    Command("serve", "the API (TICKER_REDIS_URL)", _configure_serve, _serve),
    Command(
        "worker",
        "an arq worker: ingest, changes, webhooks (TICKER_REDIS_URL)",
        _configure_worker,
        _worker,
    ),
    Command(
        "doctor",
        "check the configuration (TICKER_* variables) and say what is wrong",
        _configure_doctor,
        _doctor,
    ),
    Command(
        "bridge",
        "push bridge: the stream to FCM/APNs (ticker bridge -h)",
        _no_options,
        lambda args: 0,
        passthrough=_bridge,
    ),
    Command(
        "users",
        "editor accounts for the console: add, list, disable, reset (ticker users -h)",
        _no_options,
        lambda args: 0,
        passthrough=_users,
    ),
]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="ticker",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"ticker {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(
            command.name,
            help=command.help,
            description=command.help,
            formatter_class=HelpFormatter,
        )
        command.configure(p)
        p.set_defaults(func=command.run)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for command in COMMANDS:
        if command.passthrough is not None and argv[:1] == [command.name]:
            return command.passthrough(argv[1:])
    top = parser()
    args = top.parse_args(argv)
    if args.command is None:
        top.print_help()
        return 0
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"ticker {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0

"""The `ticker` command: run everything locally, or one role for production."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ticker.config import Settings
from ticker.logs import configure_logging

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> int:
    env = os.environ
    if args.host:
        env["TICKER_HOST"] = args.host
    if args.port is not None:
        env["TICKER_PORT"] = str(args.port)
    if args.workers is not None:
        env["TICKER_WORKERS"] = str(args.workers)
    settings = Settings.from_env()
    if settings.workers > 1 and not args.child:
        return _supervise_api(settings)
    from ticker.app import create_app
    from ticker.server import TickerServer, bind, server_config, tune_gc

    configure_logging(settings.log_level)
    app = create_app(settings)
    sock = bind(settings.host, settings.port, reuse_port=args.child or settings.workers > 1)
    server = TickerServer(server_config(app, settings, log_config=None), app)
    tune_gc()
    server.run(sockets=[sock])
    return 0


def _supervise_api(settings: Settings) -> int:
    """One API process per worker, sharing the port with SO_REUSEPORT."""
    cmd = [sys.executable, "-m", "ticker", "serve", "--child"]
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="ticker-metrics-") as metrics_dir:
        # Every process writes its metrics here, so any of them can answer a scrape.
        env.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        procs = [subprocess.Popen(cmd, env=env) for _ in range(settings.workers)]
        return _wait_all(procs)


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


def _worker(args: argparse.Namespace) -> int:
    from workers.settings import run_worker

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    asyncio.run(run_worker(settings))
    return 0


def _run(args: argparse.Namespace) -> int:
    """Everything on one machine: a private Redis, the API, a worker (and demo items)."""
    from ticker.embedded_redis import RedisProcess

    env = dict(os.environ)
    redis: RedisProcess | None = None
    if not env.get("TICKER_REDIS_URL") and not env.get("TICKER_REDIS_URL_FILE"):
        redis = RedisProcess(port=args.redis_port, data_dir=Path(args.data_dir), appendonly=True)
        redis.start()
        env["TICKER_REDIS_URL"] = redis.url
    dev_key = None
    if not env.get("TICKER_API_KEYS") and not env.get("TICKER_API_KEYS_FILE"):
        dev_key = "dev-" + secrets.token_urlsafe(18)
        scopes = ["publish", "correct", "retract", "admin"]
        env["TICKER_API_KEYS"] = json.dumps([{"name": "dev", "key": dev_key, "scopes": scopes}])
    env["TICKER_PORT"] = str(args.port)
    env.setdefault("TICKER_HOST", args.host)
    base = f"http://{env['TICKER_HOST']}:{args.port}"
    py = sys.executable
    procs = [
        subprocess.Popen([py, "-m", "ticker", "serve"], env=env),
        subprocess.Popen([py, "-m", "ticker", "worker"], env=env),
    ]
    shown = _redact(env.get("TICKER_REDIS_URL", "from TICKER_REDIS_URL_FILE"))
    print(f"\nTicker is starting (Redis: {shown})", flush=True)
    print(f"  demo page      {base}/\n  editor console {base}/console", flush=True)
    print(f"  SSE stream     {base}/v1/stream\n  WebSocket      ws://{base[7:]}/v1/ws", flush=True)
    if dev_key:
        print(f"  dev API key    {dev_key}", flush=True)
    print("Press Ctrl-C to stop.\n", flush=True)
    if args.demo:
        key = dev_key or os.environ.get("TICKER_DEMO_KEY", "")
        procs.append(
            subprocess.Popen(
                [
                    py,
                    "-m",
                    "ticker.demo",
                    "--base",
                    base,
                    "--key",
                    key,
                    "--every",
                    str(args.demo_every),
                ],
                env=env,
            )
        )
    try:
        return _wait_all(procs)
    finally:
        if redis is not None:
            redis.close()


def _redact(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ticker", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run Redis (private, unless TICKER_REDIS_URL), API, worker")
    run.add_argument("--demo", action="store_true", help="post sample items now and then")
    run.add_argument("--demo-every", type=float, default=8.0, help="seconds between demo items")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--redis-port", type=int, default=None)
    run.add_argument("--data-dir", default=".ticker-data", help="the private Redis's data")
    run.set_defaults(func=_run)

    serve = sub.add_parser("serve", help="run the API (TICKER_REDIS_URL)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=None, help="API processes")
    serve.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(func=_serve)

    worker = sub.add_parser("worker", help="run an arq worker (TICKER_REDIS_URL)")
    worker.set_defaults(func=_worker)

    # Listed here; its own parser (ticker/bridge.py) reads the rest of the line.
    sub.add_parser("bridge", help="push bridge: the stream to FCM/APNs (ticker bridge -h)")
    sub.add_parser("users", help="editor accounts for the console (ticker users -h)")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["users"]:
        from ticker.users_cli import main as users_main

        return users_main(argv[1:])
    if argv[:1] == ["bridge"]:
        from ticker.bridge import main as bridge_main

        return bridge_main(argv[1:])

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 0

"""Chaos run: kill the service's processes at random moments under load, and
check that nothing acknowledged is lost and every client sees every event once,
in order (run on demand; a two-minute version runs in tests/test_chaos.py).

It starts everything itself on loopback: a private redis-server (append-only,
``--fsync always|everysec``), ``ticker serve --workers 2`` and ``ticker worker``;
then a publisher posts through the intake every ``--post-every`` seconds
(retrying a refused post with its Idempotency-Key until 202) while ``--clients``
SSE and WebSocket clients (half each) stay connected, reconnecting and resuming
from their last id after every cut. For ``--minutes``, every ``--gap`` seconds
(drawn at random) it kill -9s one of, in shuffled turns: the worker (started
again after a moment, as an orchestrator would), Redis (restarted on the same
port and data directory), one API child (the supervisor restarts it), or the
whole API (supervisor and children, started again).

Then it lets the queue drain and the clients catch up, and reports: accepted
items never published, items published twice, per client the events missed,
seen twice or out of order and the resets, the time until every client got an
event again after each fault (p50/p99), and the RSS of each process at start
and end. Exit status 1 on any loss, duplicate or disorder.

    python scripts/chaos.py --minutes 2 --clients 60
    python scripts/chaos.py --minutes 20 --clients 300 --fsync everysec --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.chaos_clients import Client, Publisher, run_client, shared_http
from scripts.chaos_report import analyse, print_report
from scripts.soak import children
from ticker.constants import Keys
from ticker.embedded_redis import RedisProcess, free_port

FAULTS = ("worker", "redis", "api_child", "api")


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Services:
    """Redis, the API (supervisor and children) and a worker, on loopback."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.tmp = tmp
        self.key = "chaos-" + secrets.token_urlsafe(12)
        self.port = args.port or free_port()
        self.redis = RedisProcess(
            port=args.redis_port or free_port(),
            data_dir=tmp / "redis",
            appendonly=True,
            extra=("--appendfsync", args.fsync),
        )
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TICKER_")},
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
            "TICKER_REDIS_URL": self.redis.url,
            "TICKER_HOST": "127.0.0.1",
            "TICKER_PORT": str(self.port),
            "TICKER_LOG_LEVEL": "warning",
            "TICKER_SSE_PING_SECONDS": "5",
            "TICKER_CATCHUP_SECONDS": "1",
            # A killed worker's job runs again when its mark lapses (this + 10 s).
            "TICKER_WORKER_JOB_TIMEOUT": "5",
            "TICKER_MAX_CONNECTIONS_PER_IP": "100000",  # every client is 127.0.0.1
            "TICKER_RATE_LIMIT_PER_KEY": "100000/minute",
            "TICKER_RATE_LIMIT_PER_IP": "100000/minute",
            "TICKER_API_KEYS": json.dumps(
                [{"name": "chaos", "key": self.key, "scopes": ["publish"]}]
            ),
        }
        self.api: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.generation = {"api": 0, "worker": 0}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, role: str, args: list[str]) -> subprocess.Popen[bytes]:
        self.generation[role] += 1
        log = (self.tmp / f"{role}-{self.generation[role]}.log").open("wb")
        # Own session: killing the whole API kills its process group.
        return subprocess.Popen(
            [sys.executable, "-m", "ticker", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_api(self) -> None:
        self.api = self._spawn("api", ["serve", "--workers", "2"])

    def start_worker(self) -> None:
        self.worker = self._spawn("worker", ["worker"])

    async def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                try:
                    r = await http.get(self.base + "/readyz")
                    procs = r.json().get("processes", {})
                    if r.status_code == 200 and procs.get("alive") == procs.get("expected"):
                        return
                except (httpx.HTTPError, ValueError):
                    pass
                await asyncio.sleep(0.1)
        raise SystemExit("the API did not become ready")

    def pids(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.api is not None:
            out["api-supervisor"] = self.api.pid
            for i, c in enumerate(sorted(children(self.api.pid))):
                out[f"api-child{i}"] = c
        if self.worker is not None:
            out["worker"] = self.worker.pid
        if self.redis.proc is not None:
            out["redis"] = self.redis.proc.pid
        return out

    def rss(self) -> dict[str, dict[str, Any]]:
        return {n: {"pid": p, "rss_mib": rss_mib(p)} for n, p in self.pids().items()}

    async def fault(self, kind: str, rng: random.Random) -> None:
        """Kill -9 one part; bring it back as an orchestrator would (the supervisor
        brings back an API child itself)."""
        down = rng.uniform(0.5, 3.0)
        if kind == "worker":
            assert self.worker is not None
            self.worker.kill()
            self.worker.wait()
            await asyncio.sleep(down)
            self.start_worker()
        elif kind == "redis":
            self.redis.stop(kill=True)
            await asyncio.sleep(down)
            await asyncio.to_thread(self.redis.start, 30.0)
        elif kind == "api_child":
            assert self.api is not None
            kids = children(self.api.pid)
            if kids:
                os.kill(rng.choice(kids), signal.SIGKILL)
        elif kind == "api":
            assert self.api is not None
            os.killpg(self.api.pid, signal.SIGKILL)  # supervisor and children at once
            self.api.wait()
            await asyncio.sleep(down)
            self.start_api()

    def stop(self) -> None:
        for p in (self.api, self.worker):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        self.redis.close()


async def settle(svc: Services, pub: Publisher, clients: list[Client], timeout: float) -> dict:
    """After the last fault: every accepted item published, every client caught up."""
    r = aioredis.Redis.from_url(svc.redis.url)
    keys = Keys("ticker")
    deadline = time.monotonic() + timeout
    stream: list[tuple[str, str, str]] = []
    try:
        while True:
            raw = await r.xrange(keys.events)
            stream = [
                (i.decode(), f[b"type"].decode(), f.get(b"item", b"").decode()) for i, f in raw
            ]
            published = {item for _, t, item in stream if t == "item.published"}
            last = stream[-1][0] if stream else None
            pending = [i for i in pub.accepted if i not in published]
            behind = [c for c in clients if last and c.last != last]
            if (not pending and not behind) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        await r.aclose()
    return {"stream": stream}


async def chaos(args: argparse.Namespace, svc: Services) -> dict[str, Any]:
    rng = random.Random(args.seed)
    stop_clients, stop_pub = asyncio.Event(), asyncio.Event()
    n_sse = args.clients // 2
    clients = [
        Client(f"{'sse' if i < n_sse else 'ws'}{i}", "sse" if i < n_sse else "ws")
        for i in range(args.clients)
    ]
    http = shared_http()
    tasks = [asyncio.create_task(run_client(c, svc.base, stop_clients, http)) for c in clients]
    deadline = time.monotonic() + 60
    while any(c.baseline is None for c in clients) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    pub = Publisher(svc.base, svc.key, args.post_every)
    pub_task = asyncio.create_task(pub.run(stop_pub))
    rss_start = svc.rss()
    samples = [{"t": 0.0, "rss": rss_start}]
    faults: list[dict[str, Any]] = []
    order: list[str] = []
    start = time.monotonic()
    end = start + args.minutes * 60
    next_sample = start + args.sample_every
    next_fault = start + rng.uniform(*args.gap)
    while (now := time.monotonic()) < end:
        if now >= next_sample:
            samples.append({"t": round(now - start, 1), "rss": svc.rss()})
            next_sample += args.sample_every
        if now >= next_fault and now + 5 < end:
            if not order:
                order = [f for f in FAULTS if f in args.faults]
                rng.shuffle(order)
            kind = order.pop()
            t0 = time.time()
            print(f"{now - start:7.1f}s  kill -9 {kind}", flush=True)
            await svc.fault(kind, rng)
            await svc.wait_ready()
            ready = round(time.time() - t0, 3)
            faults.append({"kind": kind, "at": t0, "t": round(now - start, 1), "ready_s": ready})
            next_fault = time.monotonic() + rng.uniform(*args.gap)
        await asyncio.sleep(0.2)
    stop_pub.set()
    await pub_task
    settled = await settle(svc, pub, clients, timeout=90)
    rss_end = svc.rss()
    stop_clients.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await http.aclose()
    return analyse(args, pub, clients, faults, settled["stream"], rss_start, rss_end, samples)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=20, help="how long faults go on (20)")
    p.add_argument("--clients", type=int, default=300, help="clients, half SSE (300)")
    p.add_argument("--fsync", choices=("always", "everysec"), default="always")
    p.add_argument("--post-every", type=float, default=0.5, help="seconds between items")
    p.add_argument("--gap", type=float, nargs=2, default=(15.0, 40.0), help="s between faults")
    p.add_argument("--faults", default=",".join(FAULTS), help="kinds to inject (all four)")
    p.add_argument("--sample-every", type=float, default=30, help="seconds between RSS samples")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--redis-port", type=int, default=None)
    p.add_argument("--json", help="write the report here too")
    p.add_argument("--keep", help="keep the processes' logs in this directory")
    args = p.parse_args()
    args.faults = [f for f in args.faults.split(",") if f]
    if not set(args.faults) <= set(FAULTS) or args.clients < 2 or args.minutes > 120:
        p.error(f"--faults from {FAULTS}; --clients >= 2; --minutes <= 120")
    with tempfile.TemporaryDirectory(prefix="ticker-chaos-") as tmpdir:
        tmp = Path(args.keep) if args.keep else Path(tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        svc = Services(args, tmp)
        svc.redis.start()
        try:
            svc.start_api()
            svc.start_worker()
            asyncio.run(svc.wait_ready())
            report = asyncio.run(chaos(args, svc))
        finally:
            svc.stop()
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

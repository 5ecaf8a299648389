"""Soak: churn SSE and WebSocket clients for a while and watch the server
processes' open file descriptors and memory (run on demand, not in CI).

By default it starts everything itself (a private Redis, `ticker serve`,
`ticker worker`), then for ``--duration`` seconds: clients connect, read for a
random while, leave, and come back resuming from their last id; an editor
posts an item every ``--post-every`` seconds and retracts old ones (so the
live set, and with it the snapshot, stays the same size). Every
``--sample-every`` seconds it prints each process's open descriptors and RSS.

Verdict: for the API and the worker, the last half must be flat: the mean of
the last quarter of the samples may exceed the third quarter's by at most 5%
(or 5 descriptors / 2 MiB), so warm-up in the first half does not count; and
once every client has left, the API must hold no client connection (its Redis
connections may stay pooled). Clients also check that events come in
increasing id order across their reconnects (no duplicate, nothing out of
order). Exit status 1 on failure.

    python scripts/soak.py                                   # 10 minutes
    python scripts/soak.py --duration 180 --clients 40
    python scripts/soak.py --url http://127.0.0.1:8000 --key KEY --pid 1234 --pid 1240
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ticker.client.sseparse import SSEParser
from ticker.embedded_redis import RedisProcess, free_port


@dataclass
class Stats:
    connects: int = 0
    events: int = 0
    out_of_order: int = 0
    errors: int = 0
    posts: int = 0
    online: int = 0
    samples: list[dict[str, tuple[int, float]]] = field(default_factory=list)


def key_of(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def observe(stats: Stats, last: list[str | None], event: dict[str, object]) -> None:
    """Count an event; ids must grow across a client's reconnects (snapshots reset)."""
    stats.events += 1
    eid = str(event["id"])
    if event["type"] not in ("snapshot", "reset") and last[0] and key_of(eid) <= key_of(last[0]):
        stats.out_of_order += 1
    last[0] = eid


async def sse_client(base: str, stats: Stats, stop: asyncio.Event, max_stay: float) -> None:
    last: list[str | None] = [None]
    resume_id: str | None = None
    timeout = httpx.Timeout(10, read=60)
    async with httpx.AsyncClient(base_url=base, timeout=timeout) as http:
        while not stop.is_set():
            headers = {"Last-Event-ID": resume_id} if resume_id else {}
            parser = SSEParser()
            try:
                async with asyncio.timeout(random.uniform(0.5, max_stay)):
                    async with http.stream("GET", "/v1/stream", headers=headers) as r:
                        stats.connects += 1
                        stats.online += 1
                        try:
                            async for chunk in r.aiter_raw():
                                for m in parser.feed(chunk):
                                    observe(stats, last, orjson.loads(m.data))
                                resume_id = parser.last_id or resume_id
                        finally:
                            stats.online -= 1
            except TimeoutError:
                pass  # its time was up: leave, come back later
            except httpx.HTTPError:
                stats.errors += 1
            await asyncio.sleep(random.uniform(0.05, 0.5))


async def ws_client(base: str, stats: Stats, stop: asyncio.Event, max_stay: float) -> None:
    last: list[str | None] = [None]
    url = base.replace("http://", "ws://") + "/v1/ws"
    while not stop.is_set():
        target = f"{url}?last_event_id={last[0]}" if last[0] else url
        try:
            async with asyncio.timeout(random.uniform(0.5, max_stay)), connect(target) as conn:
                stats.connects += 1
                stats.online += 1
                try:
                    async for text in conn:
                        observe(stats, last, orjson.loads(text))
                finally:
                    stats.online -= 1
        except TimeoutError:
            pass
        except Exception:  # refused, closed with a code: count it and come back
            stats.errors += 1
        await asyncio.sleep(random.uniform(0.05, 0.5))


async def editor(base: str, key: str, stats: Stats, stop: asyncio.Event, every: float) -> None:
    """Posts items and retracts the old ones, keeping about 30 live."""
    posted: list[str] = []
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=auth) as http:
        n = 0
        while not stop.is_set():
            n += 1
            words = " ".join(secrets.token_hex(3) for _ in range(3))
            body = {"headline": f"Soak item {n}: {words}", "edition": "en"}
            with contextlib.suppress(httpx.HTTPError):
                r = await http.post("/v1/items", json=body)
                if r.status_code == 202:
                    stats.posts += 1
                    posted.append(r.json()["id"])
                if len(posted) > 30:
                    old = posted.pop(0)
                    await http.request("DELETE", f"/v1/items/{old}", json={"reason": "soak"})
            await asyncio.sleep(every)


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def sample(pid: int) -> tuple[int, float]:
    """Open descriptors and resident memory (MiB) of one process."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return fds, int(line.split()[1]) / 1024
    return fds, 0.0


def client_sockets(pid: int, port: int) -> int:
    """How many of the process's descriptors are connections accepted on ``port``
    (its Redis connections and listening socket do not count)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                local_port = int(cols[1].rsplit(":", 1)[1], 16)
                listening = cols[3] == "0A"
                if cols[9] in inodes and local_port == port and not listening:
                    n += 1
    return n


def verdict(stats: Stats, watched: list[str], idle: dict[str, int], after: dict[str, int]) -> bool:
    ok = True
    rows = stats.samples[1:]  # the first sample is before any load
    quarter = len(rows) // 4
    if quarter < 2:
        print("too few samples for a verdict: run longer or sample more often")
        return False
    q3, q4 = rows[-2 * quarter : -quarter], rows[-quarter:]
    for name in watched:
        for i, (what, slack) in enumerate((("fds", 5.0), ("rss MiB", 2.0))):
            first = sum(r[name][i] for r in rows[: len(rows) // 2]) / (len(rows) // 2)
            third = sum(r[name][i] for r in q3) / quarter
            fourth = sum(r[name][i] for r in q4) / quarter
            # Warm-up (allocator arenas, caches) may grow the first half; the
            # last half must be flat.
            fine = fourth - third <= max(slack, 0.05 * third)
            ok &= fine
            print(
                f"  {name:10} {what:8} first half {first:8.1f}  third quarter {third:8.1f}  "
                f"last quarter {fourth:8.1f}  {'ok' if fine else 'GROWTH'}"
            )
    for name, n in after.items():
        fine = n == 0
        ok &= fine
        print(
            f"  {name:10} fds idle {idle[name]}; after the clients left, client connections "
            f"still open: {n} {'ok' if fine else 'LEAK'}"
        )
    print(
        f"  clients: {stats.connects} connections, {stats.events} events, "
        f"{stats.out_of_order} out of order, {stats.errors} errors; {stats.posts} posts"
    )
    ok &= stats.out_of_order == 0
    return ok


async def soak(args: argparse.Namespace, base: str, key: str, pids: dict[str, int]) -> bool:
    stats = Stats()
    stop = asyncio.Event()
    watched = [n for n in pids if n != "redis"]
    idle = {n: sample(p)[0] for n, p in pids.items() if n != "redis" and n != "worker"}
    names = list(pids)
    print("   t  online " + " ".join(f"{n + ' fds':>12} {n + ' MiB':>12}" for n in names))

    def take(t: float) -> None:
        row = {n: sample(p) for n, p in pids.items()}
        stats.samples.append(row)
        cells = " ".join(f"{row[n][0]:12d} {row[n][1]:12.1f}" for n in names)
        print(f"{t:4.0f} {stats.online:7d} {cells}", flush=True)

    take(0)
    half = {"sse": args.clients, "ws": 0}.get(args.only, args.clients // 2)
    tasks = [asyncio.create_task(editor(base, key, stats, stop, args.post_every))]
    tasks += [
        asyncio.create_task(sse_client(base, stats, stop, args.max_stay)) for _ in range(half)
    ]
    tasks += [
        asyncio.create_task(ws_client(base, stats, stop, args.max_stay))
        for _ in range(args.clients - half)
    ]
    start = time.monotonic()
    while (t := time.monotonic() - start) < args.duration:
        await asyncio.sleep(min(args.sample_every, args.duration - t))
        take(time.monotonic() - start)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    port = int(base.rsplit(":", 1)[1].split("/")[0])
    api = {n: p for n, p in pids.items() if n in idle}
    deadline = time.monotonic() + 15  # closing handshakes may take a moment
    while True:
        after = {n: client_sockets(p, port) for n, p in api.items()}
        if not any(after.values()) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    print("verdict:")
    return verdict(stats, watched, idle, after)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=600, help="seconds of churn (600)")
    p.add_argument("--clients", type=int, default=40, help="concurrent clients, half SSE (40)")
    p.add_argument("--max-stay", type=float, default=8, help="longest a client stays (s)")
    p.add_argument("--post-every", type=float, default=0.5, help="seconds between items")
    p.add_argument("--sample-every", type=float, default=10, help="seconds between samples")
    p.add_argument("--only", choices=("sse", "ws"), help="churn one transport only")
    p.add_argument("--workers", type=int, default=1, help="API processes when starting them")
    p.add_argument("--url", help="soak a running service instead of starting one")
    p.add_argument("--key", help="an API key with the publish and retract scopes (with --url)")
    p.add_argument("--pid", type=int, action="append", default=[], help="processes to watch")
    args = p.parse_args()

    if args.url:
        if not args.key:
            p.error("--url needs --key")
        pids = {f"pid{p_}": p_ for p_ in args.pid}
        return 0 if asyncio.run(soak(args, args.url.rstrip("/"), args.key, pids)) else 1

    key = "soak-" + secrets.token_urlsafe(12)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ticker-soak-") as tmp:
        redis = RedisProcess(data_dir=tmp, appendonly=True)
        redis.start()
        env = {
            **os.environ,
            "TICKER_REDIS_URL": redis.url,
            "TICKER_PORT": str(port),
            "TICKER_WORKERS": str(args.workers),
            "TICKER_LOG_LEVEL": "warning",
            "TICKER_SSE_PING_SECONDS": "5",
            "TICKER_API_KEYS": json.dumps(
                [{"name": "soak", "key": key, "scopes": ["publish", "retract"]}]
            ),
        }
        py = sys.executable
        serve = subprocess.Popen([py, "-m", "ticker", "serve"], env=env)
        worker = subprocess.Popen([py, "-m", "ticker", "worker"], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base)
            api = children(serve.pid) if args.workers > 1 else [serve.pid]
            pids = {f"api{i}": pid for i, pid in enumerate(api)}
            pids["worker"] = worker.pid
            assert redis.proc is not None
            pids["redis"] = redis.proc.pid
            return 0 if asyncio.run(soak(args, base, key, pids)) else 1
        finally:
            for proc in (serve, worker):
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:  # never leave it running
                    proc.kill()
                    proc.wait()
            redis.close()


def _wait_ready(base: str, timeout: float = 300) -> None:  # a busy machine starts slowly
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"the service at {base} did not become ready")


if __name__ == "__main__":
    sys.exit(main())

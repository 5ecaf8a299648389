"""Benchmark runner: each scenario against Ticker and against Nchan, side by side.

For every scenario and server it starts the server privately on loopback,
connects the subscribers from several load-generating processes (many source
addresses), publishes the events on a fixed schedule, and reports:

- delivered/expected (every subscriber must get every event, once, in order);
- delay p50/p99/max from publish (the publisher's call; for items through the
  intake, Redis's publish time from the stream id) and, for intake runs, from
  the editor's POST;
- server CPU per delivery: user+system time of the server's processes only
  (Ticker's API processes; nginx's master and workers), from /proc, over the
  publishing phase; Ticker's Redis (and worker) are reported apart;
- memory per connection: growth of the server's proportional set size from
  idle to all subscribers connected, divided by the subscribers;
- connect time: from the first connection attempt to the last subscriber's
  response headers.

    python -m bench.run                       # every scenario, Ticker and Nchan
    python -m bench.run --scenario sse-10k --scenario intake-1k
    python -m bench.run --servers ticker --scale 0.1 --json /tmp/bench.json
    python -m bench.run --scenario sse-10k --baseline HEAD~3   # a change, measured
    python -m bench.run --scenario sse-10k --baseline A --baseline B   # several steps
    python -m bench.run --scenario dedupe     # the duplicate decision's CPU per item
    python -m bench.run --servers ticker --scenario intake-dedupe --scenario intake-force
    python -m bench.run ... --repeat 5     # five rounds, the scenarios' order turned each time
"""

from __future__ import annotations

import argparse
import asyncio
import math
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.procstat import cpu_seconds, pss_kib
from bench.stacks import STACKS, Publish, Stack, TickerStack, nchan_available
from bench.webpush import run_webpush

ROOT = Path(__file__).resolve().parent.parent
PER_LOADGEN = 2500  # subscribers per load-generating process


@dataclass(frozen=True)
class Scenario:
    name: str
    transport: str  # sse | ws | webpush
    subscribers: int
    events: int
    rate: float  # events per second
    via: str = "direct"  # direct: the worker's publish step; intake: POST /v1/items
    servers: tuple[str, ...] = ("ticker", "nchan")
    # Events published before the subscribers come; they all resume from the first
    # (Last-Event-ID), so each reads what it missed from Redis: a reconnect wave.
    replay: int = 0
    # Published items already in the duplicate window (story facts kept beside them).
    prefill: int = 0
    # Items posted with "force": true (no near-duplicate search), for a side by side.
    force: bool = False


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("sse-10k", "sse", 10_000, 50, 5),
        Scenario("ws-10k", "ws", 10_000, 50, 5),
        Scenario("sse-1k", "sse", 1_000, 200, 20),
        Scenario("sse-100-fast", "sse", 100, 5_000, 1_000),
        # The whole pipeline: intake, queue, worker (dedupe), publish, fan-out.
        Scenario("intake-1k", "sse", 1_000, 200, 20, via="intake", servers=("ticker",)),
        # 10,000 clients come back at once with a last event id 20 events old.
        Scenario("resume-10k", "sse", 10_000, 10, 5, servers=("ticker",), replay=21),
        # One flash to 100,000 Web Push subscriptions on a fake push service (bench/webpush.py).
        Scenario("webpush-100k", "webpush", 100_000, 1, 1, via="webpush", servers=("ticker",)),
        # The duplicate decision at intake speed, against a window of 10,000 items, and the
        # same run with "force": true (no near-duplicate search) to compare throughput.
        Scenario("intake-dedupe", "sse", 100, 3000, 1000, "intake", ("ticker",), prefill=10_000),
        Scenario(
            "intake-force",
            "sse",
            100,
            3000,
            1000,
            "intake",
            ("ticker",),
            prefill=10_000,
            force=True,
        ),
    )
}
# In-process micro-benchmarks (bench/dedupe.py): no server, no subscribers.
MICRO = ("dedupe",)
# The duplicate decision's cost to the pipeline: the same items with the search and without.
SEARCHED, FORCED = "intake-dedupe", "intake-force"


def quantiles(values: array[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)

    def q(p: float) -> float:
        return round(ordered[min(n - 1, max(0, math.ceil(p * n) - 1))], 2)

    return {"p50": q(0.50), "p99": q(0.99), "max": round(ordered[-1], 2)}


async def _line(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    raw = await proc.stdout.readline()
    if not raw:
        raise RuntimeError(f"load generator {proc.pid} exited ({await proc.wait()})")
    return orjson.loads(raw)


async def run_one(stack: Stack, sc: Scenario, drain: float, tmp: str) -> dict[str, Any]:
    """One scenario against one running server."""
    idle_kib = pss_kib(stack.server_pids())
    n_gen = max(1, math.ceil(sc.subscribers / PER_LOADGEN))
    resume_from = None
    if sc.replay:
        early = await stack.publisher(sc.via)
        for seq in range(1, sc.replay + 1):
            sid = await early(seq, int(time.time() * 1e6))
            resume_from = resume_from or sid
        await early.close()
    server = stack.server_pids()
    others = stack.other_pids()
    cpu_idle = cpu_seconds(server)
    other_idle = {k: cpu_seconds(v) for k, v in others.items()}
    start_at = time.time() + 0.5
    gens = []
    for k in range(n_gen):
        count = sc.subscribers // n_gen + (k < sc.subscribers % n_gen)
        cfg = {
            "server": stack.name,
            "host": "127.0.0.1",
            "port": stack.port,
            "path": stack.path(sc.transport),
            "transport": sc.transport,
            "count": count,
            "events": sc.events + max(sc.replay - 1, 0),
            "last_event_id": resume_from,
            "first_seq": 1 if sc.replay else 0,
            "measure_after": sc.replay,
            # Loopback has every 127/8 address: each process its own sources, so
            # ten thousand connections never run out of ephemeral ports.
            "sources": [f"127.0.{k + 1}.{j}" for j in range(1, 17)],
            "start_at": start_at,
            "out": f"{tmp}/{_safe(stack.name)}-{sc.name}-{k}",
        }
        gens.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.loadgen",
                orjson.dumps(cfg).decode(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=ROOT,
                limit=1 << 20,
            )
        )
    try:
        ready = [await _line(g) for g in gens]
        connected = sum(r["ok"] for r in ready)
        connect_s = max(r["last"] for r in ready) - min(r["first"] for r in ready)
        await asyncio.sleep(1.0)  # let the server settle before reading its memory
        conn_kib = pss_kib(server) - idle_kib
        connect_cpu = cpu_seconds(server) - cpu_idle
        connect_other = {k: cpu_seconds(v) - other_idle[k] for k, v in others.items()}

        publish = await stack.publisher(sc.via, sc.force, story=sc.prefill > 0)
        cpu0 = cpu_seconds(server)
        other0 = {k: cpu_seconds(v) for k, v in others.items()}
        waits = [asyncio.ensure_future(_line(g)) for g in gens]
        t0 = time.time()
        late, published_s = await offer(publish, sc, t0)
        await publish.close()
        await asyncio.wait(waits, timeout=drain)
        cpu = cpu_seconds(server) - cpu0
        other = {k: cpu_seconds(v) - other0[k] for k, v in others.items()}
        mem_after = pss_kib(server)

        for g in gens:
            assert g.stdin is not None
            g.stdin.write(b"finish\n")
        done = []
        for g, w in zip(gens, waits, strict=True):
            line = await w
            while "done" not in line:
                line = await _line(g)
            done.append(line)
        for g in gens:
            await g.wait()
    finally:
        for g in gens:
            if g.returncode is None:
                g.kill()
                await g.wait()

    lat_bt, lat_sid = array("d"), array("d")
    for k in range(n_gen):
        out = f"{tmp}/{_safe(stack.name)}-{sc.name}-{k}"
        for arr, suffix in ((lat_bt, ".bt"), (lat_sid, ".sid")):
            arr.frombytes(Path(out + suffix).read_bytes())  # noqa: ASYNC240
    delivered = sum(d["delivered"] for d in done)
    # CPU is read over the live phase: replayed events came while connecting.
    live = sum(d["live"] for d in done)
    expected = sc.subscribers * (sc.events + max(sc.replay - 1, 0))
    result: dict[str, Any] = {
        "scenario": sc.name,
        "server": stack.name,
        "subscribers": sc.subscribers,
        "connected": connected,
        "events": sc.events,
        "rate": sc.rate,
        "via": sc.via,
        "expected": expected,
        "delivered": delivered,
        "duplicates": sum(d["duplicates"] for d in done),
        "out_of_order": sum(d["out_of_order"] for d in done),
        "closed_early": sum(d["closed_early"] for d in done),
        "connect_s": round(connect_s, 3),
        "kib_per_conn": round(conn_kib / max(connected, 1), 2),
        "kib_per_conn_after": round((mem_after - idle_kib) / max(connected, 1), 2),
        "cpu_us_per_delivery": round(cpu * 1e6 / max(live, 1), 2),
        "other_cpu_us_per_delivery": {
            k: round(v * 1e6 / max(live, 1), 2) for k, v in other.items()
        },
        # Connecting (and, with replay, resuming): CPU per subscriber.
        "connect_cpu_us_per_conn": round(connect_cpu * 1e6 / max(connected, 1), 1),
        "connect_other_cpu_us_per_conn": {
            k: round(v * 1e6 / max(connected, 1), 1) for k, v in connect_other.items()
        },
        "publish_late_max_ms": round(late * 1e3, 1),
        "publish_s": round(published_s, 2),
        "planned_s": round((sc.events - 1) / sc.rate, 2),
    }
    if sc.via == "intake":
        result["from_intake_ms"] = quantiles(lat_bt)
        result["from_publish_ms"] = quantiles(lat_sid)
        # Items per second from the first POST to the last item on the last screen.
        last_at = max((d.get("last_at") or 0.0) for d in done)
        result["first_post_to_last_screen_s"] = round(last_at - t0, 2) if last_at else None
        result["throughput_per_s"] = round(sc.events / max(last_at - t0, 1e-3), 1)
        result["worker_cpu_ms_per_item"] = round(other.get("worker", 0.0) * 1e3 / sc.events, 2)
    else:
        result["from_publish_ms"] = quantiles(lat_bt)
    return result


async def offer(publish: Publish, sc: Scenario, t0: float) -> tuple[float, float]:
    """Publish ``sc.events`` on the schedule (``sc.rate`` a second from ``t0``); returns the
    latest a publish started after its due time and the seconds until the last one
    returned. A publisher with ``concurrency`` above one is called that many at a time,
    so a slow answer does not hold back the next one: the schedule's rate is offered."""
    inflight = asyncio.Semaphore(getattr(publish, "concurrency", 1))
    late = 0.0
    tasks: set[asyncio.Task[Any]] = set()
    failures: list[BaseException] = []

    async def one(seq: int, due: float) -> None:
        nonlocal late
        try:
            sent = time.time()
            late = max(late, sent - due)
            await publish(sc.replay + seq, int(sent * 1e6))
        except Exception as exc:
            failures.append(exc)
        finally:
            inflight.release()

    for seq in range(1, sc.events + 1):
        if failures:
            break
        due = t0 + (seq - 1) / sc.rate
        if (pause := due - time.time()) > 0:
            await asyncio.sleep(pause)
        await inflight.acquire()
        task = asyncio.create_task(one(seq, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    if failures:
        raise failures[0]
    return late, time.time() - t0


def make_stack(name: str, workers: int, trees: dict[str, str]) -> Stack:
    if name in trees:
        return TickerStack(workers, source=trees[name], name=name)
    return STACKS[name](workers=workers)  # type: ignore[no-any-return]


def checkout(rev: str, into: str) -> str:
    """The tree of ``rev`` (git archive), to serve as a baseline beside this one."""
    tree = Path(into, "baseline-" + _safe(rev))
    tree.mkdir()
    archive = subprocess.run(
        ["git", "archive", rev], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return str(tree)


async def run(
    scenarios: list[Scenario],
    servers: list[str],
    workers: int,
    drain: float,
    baselines: Sequence[str] = (),
    rounds: int = 1,
) -> list:
    """Every scenario on every server, ``rounds`` times; each round takes the scenarios in
    the other order, so neither of two compared ones always runs first."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        trees = {f"ticker@{rev}": checkout(rev, tmp) for rev in baselines}
        if trees:
            servers = ["ticker", *trees, *(s for s in servers if s != "ticker")]
        for n in range(1, rounds + 1):
            await run_round(
                scenarios if n % 2 else scenarios[::-1],
                servers,
                workers,
                drain,
                trees,
                tmp,
                n,
                results,
            )
    return results


async def run_round(
    scenarios: list[Scenario],
    servers: list[str],
    workers: int,
    drain: float,
    trees: dict[str, str],
    tmp: str,
    n: int,
    results: list[dict[str, Any]],
) -> None:
    for sc in scenarios:
        for name in servers:
            if name.split("@")[0] not in sc.servers:
                continue
            print(f"# {sc.name} on {name} ...", file=sys.stderr, flush=True)
            if sc.via == "webpush":
                source = trees.get(name)  # a baseline's server and worker, the same fake
                r = await run_webpush(sc.name, sc.subscribers, workers, drain * 4, source, name)
            else:
                stack = make_stack(name, workers, trees)
                try:
                    await asyncio.to_thread(stack.start, sc.via, sc.prefill)
                    r = await run_one(stack, sc, drain, tmp)
                except Exception as exc:  # report it and go on with the next one
                    print(f"# {sc.name} on {name} failed: {exc!r}", file=sys.stderr)
                    r = failed(sc, name, repr(exc))
                finally:
                    await asyncio.to_thread(stack.stop)
            r["round"] = n
            print(orjson.dumps(r).decode(), file=sys.stderr, flush=True)
            results.append(r)


def _safe(name: str) -> str:
    """A server's name as part of a file name (``ticker@origin/main``)."""
    return re.sub(r"[^\w.@-]", "_", name)


def failed(sc: Scenario, server: str, error: str) -> dict[str, Any]:
    return {
        "scenario": sc.name,
        "server": server,
        "error": error,
        "expected": sc.subscribers * (sc.events + max(sc.replay - 1, 0)),
        "delivered": 0,
        "duplicates": 0,
    }


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    return f"{a / b:.2f}x"


def report(results: list[dict[str, Any]]) -> str:
    """A markdown table per scenario and the Ticker/Nchan ratios."""
    out = [
        "| scenario | server | delivered | p50 ms | p99 ms | max ms | CPU us/delivery "
        "| KiB/conn | connect s | CPU us/connect | publish late max ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    push = [r for r in results if r.get("kind") == "webpush"]
    results = [r for r in results if r.get("kind") != "webpush"]
    for r in results:
        if "error" in r:
            out.append(f"| {r['scenario']} | {r['server']} | failed: {r['error']} |")
            continue
        lat = r["from_publish_ms"] or {}
        extra = "".join(f" +{k} {v}" for k, v in r["other_cpu_us_per_delivery"].items())
        extra_c = "".join(f" +{k} {v}" for k, v in r["connect_other_cpu_us_per_conn"].items())
        out.append(
            f"| {r['scenario']} | {r['server']} | {r['delivered']}/{r['expected']} "
            f"| {lat.get('p50')} | {lat.get('p99')} | {lat.get('max')} "
            f"| {r['cpu_us_per_delivery']}{extra} | {r['kib_per_conn']} | {r['connect_s']} "
            f"| {r['connect_cpu_us_per_conn']}{extra_c} | {r['publish_late_max_ms']} |"
        )
        if intake := r.get("from_intake_ms"):
            out.append(
                f"| {r['scenario']} (from intake) | {r['server']} | | {intake['p50']} "
                f"| {intake['p99']} | {intake['max']} | {r['throughput_per_s']} items/s, "
                f"worker {r['worker_cpu_ms_per_item']} ms/item | | | | |"
            )
    by = {(r["scenario"], r["server"]): r for r in results}
    rows = []
    for (scenario, server), t in by.items():
        n = by.get((scenario, "nchan"))
        if server == "nchan" or n is None or "error" in t or "error" in n:
            continue
        rows.append(
            f"| {scenario} | {server} "
            f"| {ratio(t['cpu_us_per_delivery'], n['cpu_us_per_delivery'])} "
            f"| {ratio(t['from_publish_ms']['p99'], n['from_publish_ms']['p99'])} "
            f"| {ratio(t['kib_per_conn'], n['kib_per_conn'])} "
            f"| {ratio(t['connect_s'], n['connect_s'])} |"
        )
    if push:
        out += [
            "",
            "| scenario | server | delivered | alerts/s | POST to first s | POST to last s "
            "| worker CPU us/alert | fake push service CPU us/alert |",
            "|---|---|---|---|---|---|---|---|",
            *(
                f"| {r['scenario']} | {r['server']} | {r['delivered']}/{r['expected']} "
                f"| {r['alerts_per_s']} | {r['post_to_first_s']} | {r['post_to_last_s']} "
                f"| {r['worker_cpu_us_per_alert']} | {r.get('push_service_cpu_us_per_alert')} |"
                for r in push
            ),
        ]
    out += searched_vs_forced(results)
    if rows:
        out += [
            "",
            "Ticker / Nchan (lower is better for Ticker):",
            "",
            "| scenario | server | CPU per delivery | p99 | KiB/conn | connect time |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    return "\n".join(out)


def searched_vs_forced(results: list[dict[str, Any]]) -> list[str]:
    """Per server and round, the throughput with the near-duplicate search over the same
    items' with ``"force": true`` (issue 14: at least 90 %), and the median over rounds."""
    by = {(r["scenario"], r["server"], r.get("round", 1)): r for r in results if "error" not in r}
    rows: list[str] = []
    ratios: dict[str, list[float]] = {}
    for (scenario, server, n), s in by.items():
        f = by.get((FORCED, server, n))
        if scenario != SEARCHED or f is None:
            continue
        ratio = s["throughput_per_s"] / f["throughput_per_s"]
        ratios.setdefault(server, []).append(ratio)
        rows.append(
            f"| {server} | {n} | {s['throughput_per_s']} | {f['throughput_per_s']} | {ratio:.0%} "
            f"| {s['worker_cpu_ms_per_item']} | {f['worker_cpu_ms_per_item']} |"
        )
    if not rows:
        return []
    return [
        "",
        "With the near-duplicate search / with force, in the same round:",
        "",
        "| server | round | search items/s | force items/s | search / force "
        "| worker ms/item, search | force |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        *(
            f"- {server}: median {statistics.median(v):.0%} over {len(v)} rounds "
            f"({min(v):.0%} to {max(v):.0%})"
            for server, v in ratios.items()
        ),
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--scenario", action="append", choices=sorted([*SCENARIOS, *MICRO]), help="(all)"
    )
    p.add_argument("--servers", default="ticker,nchan", help="comma list (ticker,nchan)")
    p.add_argument("--workers", type=int, default=2, help="server processes each (2)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply subscribers and events")
    p.add_argument("--drain", type=float, default=30, help="seconds to wait for deliveries")
    p.add_argument("--json", help="write the results here")
    p.add_argument(
        "--repeat", type=int, default=1, help="rounds, the scenarios' order turned each (1)"
    )
    p.add_argument(
        "--baseline",
        metavar="REV",
        action="append",
        default=[],
        help="also run Ticker as of this git revision, side by side (repeatable)",
    )
    args = p.parse_args()

    servers = [s for s in args.servers.split(",") if s]
    if "nchan" in servers and not nchan_available():
        print("nchan: nginx or libnginx-mod-nchan is not installed; skipped", file=sys.stderr)
        servers.remove("nchan")
    micro = [n for n in args.scenario or () if n in MICRO]
    scenarios = [SCENARIOS[n] for n in args.scenario or SCENARIOS if n not in MICRO]
    if args.scale != 1.0:
        scenarios = [
            replace(
                s,
                subscribers=max(1, round(s.subscribers * args.scale)),
                events=max(2, round(s.events * args.scale)),
            )
            for s in scenarios
        ]
    started = datetime.now(UTC)
    micro_results: list[dict[str, Any]] = []
    if micro:
        from bench import dedupe

        micro_results = dedupe.run()
        print(dedupe.report(micro_results))
    results = (
        asyncio.run(run(scenarios, servers, args.workers, args.drain, args.baseline, args.repeat))
        if scenarios
        else []
    )
    if results:
        print(report(results))
    if args.json:
        doc = {
            "date": started.isoformat(timespec="seconds"),
            "command": " ".join(["python -m bench.run", *sys.argv[1:]]),
            "machine": {"cpus": _cpus(), "python": platform.python_version()},
            "scenarios": [asdict(s) for s in scenarios],
            "results": results,
            "micro": micro_results,
        }
        Path(args.json).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    lost = [r for r in results if r["delivered"] != r["expected"] or r["duplicates"]]
    return 1 if lost else 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())

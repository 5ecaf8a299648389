"""The chaos run's verdict: what was lost, doubled or reordered, and how fast
clients came back after each fault (scripts/chaos.py)."""

from __future__ import annotations

import argparse
import bisect
import statistics
from typing import Any

from scripts.chaos_clients import Client, Publisher, pack

__all__ = ["analyse", "print_report"]


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def _client_faults(c: Client, stream: set[int]) -> dict[str, int]:
    """Missed (in the stream after its first snapshot, never seen), seen twice,
    out of order, and phantoms (seen, then gone from the stream: lost by Redis)."""
    seen: set[int] = set()
    dup = disorder = 0
    top = -1
    for x in c.ids:
        if x in seen:
            dup += 1
            continue
        if x < top:
            disorder += 1
        seen.add(x)
        top = max(top, x)
    base = c.baseline if c.baseline is not None else 0
    missed = sum(1 for x in stream if x > base and x not in seen)
    return {
        "missed": missed,
        "duplicates": dup,
        "out_of_order": disorder,
        "phantoms": len(seen - stream),
        "resets": c.resets,
        "connects": c.connects,
        "errors": c.errors,
    }


def _recovery(faults: list[dict[str, Any]], clients: list[Client]) -> None:
    """Per fault: seconds until the last client got an event appended after it
    (and until half of them had; which transport was last)."""
    for f in faults:
        after = pack(f"{int(f['at'] * 1000)}-0")
        waits: list[tuple[float, str]] = []
        for c in clients:
            i = bisect.bisect_right(c.ids, after)
            if i < len(c.ids):
                waits.append((c.times[i] - f["at"], c.transport))
        waits.sort()
        complete = len(waits) == len(clients)
        f["all_live_after_s"] = round(waits[-1][0], 3) if complete else None
        f["half_live_after_s"] = round(waits[len(waits) // 2][0], 3) if waits else None
        f["last_transport"] = waits[-1][1] if waits else None


def analyse(
    args: argparse.Namespace,
    pub: Publisher,
    clients: list[Client],
    faults: list[dict[str, Any]],
    stream: list[tuple[str, str, str]],
    rss_start: dict[str, Any],
    rss_end: dict[str, Any],
    samples: list[dict[str, Any]],
) -> dict[str, Any]:
    ids = {pack(i) for i, _, _ in stream}
    per_item: dict[str, int] = {}
    for _, kind, item in stream:
        if kind == "item.published":
            per_item[item] = per_item.get(item, 0) + 1
    not_published = sorted(i for i in pub.accepted if i not in per_item)
    twice = sorted(i for i, n in per_item.items() if n > 1)
    rows = {c.name: _client_faults(c, ids) for c in clients}
    _recovery(faults, clients)
    for f in faults:  # when the intake answered 202 again
        back = [t for t in pub.accepted.values() if t > f["at"]]
        f["intake_back_s"] = round(min(back) - f["at"], 3) if back else None
    live = [f["all_live_after_s"] for f in faults if f["all_live_after_s"] is not None]
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in sorted({f["kind"] for f in faults}):
        vals = [f["all_live_after_s"] for f in faults if f["kind"] == kind]
        got = [v for v in vals if v is not None]
        by_kind[kind] = {
            "faults": len(vals),
            "p50_s": _pct(got, 0.5),
            "p99_s": _pct(got, 0.99),
            "never": len(vals) - len(got),
        }
    totals = {k: sum(r[k] for r in rows.values()) for k in next(iter(rows.values()))}
    worst = {k: max(r[k] for r in rows.values()) for k in totals}
    never = sum(1 for f in faults if f["all_live_after_s"] is None)
    ok = not (
        not_published
        or twice
        or pub.given_up
        or pub.refused
        or never
        or any(totals[k] for k in ("missed", "duplicates", "out_of_order", "phantoms"))
    )
    return {
        "ok": ok,
        "settings": {
            "minutes": args.minutes,
            "clients": args.clients,
            "fsync": args.fsync,
            "post_every": args.post_every,
            "gap": list(args.gap),
            "faults": args.faults,
            "seed": args.seed,
        },
        "accepted": len(pub.accepted),
        "publish_retries": pub.retries,
        "given_up": pub.given_up,
        "refused": pub.refused[:10],
        "stream_events": len(stream),
        "accepted_not_published": not_published,
        "published_twice": twice,
        "clients_total": totals,
        "clients_worst": worst,
        "clients_with_loss": sorted(n for n, r in rows.items() if r["missed"] or r["phantoms"]),
        "faults": faults,
        "all_live_after_s": {
            "p50": _pct(live, 0.5),
            "p99": _pct(live, 0.99),
            "max": max(live) if live else None,
            "mean": round(statistics.fmean(live), 3) if live else None,
            "never": never,
            "by_kind": by_kind,
        },
        "rss_start": rss_start,
        "rss_end": rss_end,
        "rss_flat": _flatness(samples),
        "rss_samples": samples,
    }


def _flatness(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each process that lived through at least six samples: its RSS after
    warm-up (the first quarter of its samples) against its last."""
    series: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for s in samples:
        for name, v in s["rss"].items():
            if v["rss_mib"] is not None:
                role = name.rstrip("0123456789")
                series.setdefault((role, v["pid"]), []).append((s["t"], v["rss_mib"]))
    out = []
    for (role, pid), points in sorted(series.items()):
        if len(points) < 6:
            continue
        warm = points[len(points) // 4]
        end = points[-1]
        out.append(
            {
                "name": role,
                "pid": pid,
                "seconds": end[0] - warm[0],
                "warm_mib": round(warm[1], 1),
                "end_mib": round(end[1], 1),
                "growth_pct": round(100 * (end[1] - warm[1]) / warm[1], 1),
            }
        )
    return out


def print_report(r: dict[str, Any]) -> None:
    s = r["settings"]
    print(
        f"\nchaos: {s['minutes']} min, {s['clients']} clients, appendfsync {s['fsync']}, "
        f"{len(r['faults'])} faults"
    )
    print(
        f"  items accepted {r['accepted']} (retried posts {r['publish_retries']}, given up "
        f"{r['given_up']}, refused {len(r['refused'])}); stream events {r['stream_events']}"
    )
    print(
        f"  accepted not published {len(r['accepted_not_published'])}; "
        f"published twice {len(r['published_twice'])}"
    )
    t, w = r["clients_total"], r["clients_worst"]
    for k in ("missed", "duplicates", "out_of_order", "phantoms", "resets", "connects", "errors"):
        print(f"  clients {k:13} total {t[k]:7d}  worst client {w[k]:6d}")
    a = r["all_live_after_s"]
    print(
        f"  every client live again after a fault: p50 {a['p50']} s, p99 {a['p99']} s, "
        f"max {a['max']} s, never {a['never']}"
    )
    for kind, k in a["by_kind"].items():
        print(
            f"    {kind:10} x{k['faults']:3d}  p50 {k['p50_s']} s  p99 {k['p99_s']} s  "
            f"never {k['never']}"
        )
    print("  RSS MiB after warm-up (a quarter of each process's samples) -> end:")
    for row in r["rss_flat"]:
        print(
            f"    {row['name']:15} pid {row['pid']:7d} over {row['seconds']:6.0f}s  "
            f"{row['warm_mib']:7.1f} -> {row['end_mib']:7.1f}  ({row['growth_pct']:+.1f}%)"
        )
    print("  RSS MiB at start -> end:")
    for name in sorted(set(r["rss_start"]) | set(r["rss_end"])):
        a0, a1 = r["rss_start"].get(name, {}), r["rss_end"].get(name, {})
        same = "same process" if a0.get("pid") == a1.get("pid") else "restarted"
        print(f"    {name:15} {a0.get('rss_mib')} -> {a1.get('rss_mib')}  ({same})")
    print("verdict:", "ok" if r["ok"] else "FAILED")

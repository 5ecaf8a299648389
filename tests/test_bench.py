"""The benchmark itself runs (tiny scale): every subscriber gets every event,
for Ticker over SSE, WebSocket and the whole intake pipeline, and for Nchan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.stacks import nchan_available

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_benchmark_runs_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "bench.run", "--scale", "0.01", "--json", str(out)]
    for scenario in ("sse-1k", "ws-10k", "intake-1k"):
        cmd += ["--scenario", scenario]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(out.read_text())
    results = {(r["scenario"], r["server"]): r for r in doc["results"]}
    expected = {("sse-1k", "ticker"), ("ws-10k", "ticker"), ("intake-1k", "ticker")}
    if nchan_available():
        expected |= {("sse-1k", "nchan"), ("ws-10k", "nchan")}
    assert set(results) == expected
    for r in results.values():
        assert "error" not in r, r
        assert r["delivered"] == r["expected"] > 0, r
        assert r["duplicates"] == 0 and r["out_of_order"] == 0, r
        assert r["from_publish_ms"]["p99"] >= r["from_publish_ms"]["p50"] > 0, r
        assert r["cpu_us_per_delivery"] >= 0 and r["connect_s"] > 0, r
    intake = results[("intake-1k", "ticker")]
    assert intake["from_intake_ms"]["p50"] >= intake["from_publish_ms"]["p50"]
    # The report names the ratios when Nchan ran beside Ticker.
    assert ("Ticker / Nchan" in run.stdout) == nchan_available()


def test_the_search_is_compared_with_force_round_by_round() -> None:
    """The report sets each round's throughput with the near-duplicate search against the
    same round's with force, per server, and gives the median over the rounds."""
    from bench.run import report

    base: dict[str, Any] = {
        "server": "ticker",
        "delivered": 1,
        "expected": 1,
        "from_publish_ms": None,
        "cpu_us_per_delivery": 0,
        "other_cpu_us_per_delivery": {},
        "kib_per_conn": 0,
        "connect_s": 0,
        "connect_cpu_us_per_conn": 0,
        "connect_other_cpu_us_per_conn": {},
        "publish_late_max_ms": 0,
        "worker_cpu_ms_per_item": 1.0,
    }
    runs = [("dedupe", 1, 90.0), ("force", 1, 100.0), ("force", 2, 100.0), ("dedupe", 2, 110.0)]
    runs += [("dedupe", 3, 95.0), ("force", 3, 100.0)]
    results = [
        {**base, "scenario": f"intake-{kind}", "round": n, "throughput_per_s": rate}
        for kind, n, rate in runs
    ]
    text = report(results)
    assert "| ticker | 1 | 90.0 | 100.0 | 90% | 1.0 | 1.0 |" in text
    assert "| ticker | 2 | 110.0 | 100.0 | 110% |" in text
    assert "- ticker: median 95% over 3 rounds (90% to 110%)" in text

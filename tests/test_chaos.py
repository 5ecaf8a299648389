"""The chaos run, short: two minutes of kill -9 (worker, Redis, an API child, the whole
API) under a publisher and 60 SSE/WebSocket clients (scripts/chaos.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_minutes_of_kills_lose_double_and_reorder_nothing(tmp_path: Path) -> None:
    """With Redis on `appendfsync always`, every item the intake accepted is published once,
    and every client sees every event once, in order, through kills of each part."""
    out = tmp_path / "report.json"
    args = ["--minutes", "2", "--clients", "60", "--gap", "5", "10", "--fsync", "always"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "chaos.py"), *args, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    kinds = {f["kind"] for f in report["faults"]}
    assert kinds == {"worker", "redis", "api_child", "api"}, report["faults"]
    assert report["accepted"] > 0 and report["given_up"] == 0 and not report["refused"]
    assert report["accepted_not_published"] == [] and report["published_twice"] == []
    totals = report["clients_total"]
    for what in ("missed", "duplicates", "out_of_order", "phantoms"):
        assert totals[what] == 0, (what, done.stdout[-3000:])
    assert report["all_live_after_s"]["never"] == 0
    assert done.returncode == 0 and report["ok"], done.stdout[-3000:]

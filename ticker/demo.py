"""Demo data: a newsroom afternoon played through the intake API (`ticker run --demo`).

Each edition's desk has its own items, written for its readers, in ticker/demo_data/<edition>.json
(place names in that edition's script, regions that match the places, see places.json). The
desks' items are merged into one timeline: bursts when a story breaks, a flash now and then, a
correction or a retraction a few beats after the item it changes. A beat is `--every` seconds.
The afternoon is played once; the items then stay live until they expire.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "DATA_DIR",
    "Step",
    "load_desks",
    "load_places",
    "main",
    "post_payload",
    "timeline",
    "wait_ready",
]

DATA_DIR = Path(__file__).parent / "demo_data"
EDITIONS = ("en", "ar", "es")
SOURCE = "Ticker demo desk"


@dataclass(frozen=True, order=True)
class Step:
    """One newsroom action at `at` beats: post an item, correct it or retract it."""

    at: float
    seq: int
    action: str = field(compare=False)  # "post", "correct" or "retract"
    key: str = field(compare=False)  # "<edition>-<n>", ties a correction to its item
    body: dict[str, Any] = field(compare=False)


def load_places() -> dict[str, dict[str, Any]]:
    data = json.loads((DATA_DIR / "places.json").read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def load_desks(editions: tuple[str, ...] = EDITIONS) -> dict[str, list[dict[str, Any]]]:
    """Each edition's items as written in its data file."""
    desks = {}
    for edition in editions:
        data = json.loads((DATA_DIR / f"{edition}.json").read_text(encoding="utf-8"))
        desks[edition] = data["items"]
    return desks


def post_payload(edition: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The POST /v1/items body for one data entry."""
    body: dict[str, Any] = {
        "headline": entry["headline"],
        "edition": edition,
        "categories": entry["categories"],
        "regions": entry["regions"],
        "urgency": entry["urgency"],
        "source": SOURCE,
    }
    if entry.get("pinned"):
        body["pinned"] = True
    return body


def timeline(desks: dict[str, list[dict[str, Any]]]) -> list[Step]:
    """Every desk's posts, corrections and retractions, merged in time order."""
    steps: list[Step] = []
    seq = 0
    for edition, entries in desks.items():
        at = 0.0
        for n, entry in enumerate(entries):
            at += float(entry["after"])
            key = f"{edition}-{n}"
            steps.append(Step(at, seq := seq + 1, "post", key, post_payload(edition, entry)))
            if fix := entry.get("correct"):
                body = {"headline": fix["headline"], "correction_note": fix["correction_note"]}
                steps.append(Step(at + float(fix["after"]), seq := seq + 1, "correct", key, body))
            if pull := entry.get("retract"):
                body = {"reason": pull["reason"]}
                steps.append(Step(at + float(pull["after"]), seq := seq + 1, "retract", key, body))
    return sorted(steps)


def wait_ready(client: httpx.Client, timeout: float = 60.0) -> None:
    """Wait until the API answers /readyz (it starts beside this process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if client.get("/readyz").status_code == 200:
                return
        time.sleep(0.5)


def play(client: httpx.Client, steps: list[Step], beat: float) -> dict[str, str]:
    """Send each step at its time; a step whose item never got an id is skipped. Returns the
    item id of each posted step's key."""
    ids: dict[str, str] = {}
    started = time.monotonic()
    for step in steps:
        time.sleep(max(0.0, started + step.at * beat - time.monotonic()))
        with contextlib.suppress(httpx.HTTPError):  # a failed step is skipped, not fatal
            if step.action == "post":
                r = client.post("/v1/items", json=step.body)
                if r.status_code == 202:
                    ids[step.key] = r.json()["id"]
            elif step.key in ids:
                method = "PATCH" if step.action == "correct" else "DELETE"
                client.request(method, f"/v1/items/{ids[step.key]}", json=step.body)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ticker.demo",
        description="Play a newsroom afternoon (API key: --key-file or TICKER_DEMO_KEY).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--base", required=True, help="the ticker's base URL")
    parser.add_argument("--key-file", help="a file holding the API key (never the key itself)")
    parser.add_argument("--every", type=float, default=8.0, help="seconds per newsroom beat")
    args = parser.parse_args()
    key = Path(args.key_file).read_text().strip() if args.key_file else ""
    key = key or os.environ.get("TICKER_DEMO_KEY", "")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=args.base, headers=headers, timeout=5) as client:
        wait_ready(client)
        play(client, timeline(load_desks()), args.every)


if __name__ == "__main__":
    main()

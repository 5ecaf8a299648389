"""Demo data: posts made-up breaking items now and then (`ticker run --demo`)."""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import time
from pathlib import Path

import httpx

__all__ = ["demo_items", "main"]

PLACES = ["Jenin", "Nablus", "Aden", "Khartoum", "Madrid", "Lima", "Manila", "Kyiv"]
TEMPLATES = {
    "en": [
        ("{n} killed in {p} strike, officials say", "politics", 2),
        ("Central bank holds rates at {n}%", "economy", 4),
        ("Magnitude {n}.2 earthquake strikes near {p}", "world", 1),
        ("{p} hospital reports {n} new cases of cholera", "health", 3),
    ],
    "ar": [
        ("مقتل {n} في غارة على {p}", "politics", 2),
        ("البنك المركزي يثبت سعر الفائدة عند {n}%", "economy", 4),
    ],
    "es": [
        ("Terremoto de magnitud {n},1 sacude {p}", "world", 1),
        ("El banco central mantiene los tipos en el {n}%", "economy", 4),
    ],
}


def demo_items(rng: random.Random) -> dict[str, object]:
    edition = rng.choice(list(TEMPLATES))
    text, category, urgency = rng.choice(TEMPLATES[edition])
    return {
        "headline": text.format(n=rng.randint(2, 9), p=rng.choice(PLACES)),
        "edition": edition,
        "categories": [category],
        "regions": [rng.choice(["mena", "europe", "latam", "asia-pacific"])],
        "urgency": urgency,
        "source": "Ticker demo",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ticker.demo",
        description="Post made-up items; the API key comes from --key-file or TICKER_DEMO_KEY.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--base", required=True, help="the ticker's base URL")
    parser.add_argument("--key-file", help="a file holding the API key (never the key itself)")
    parser.add_argument("--every", type=float, default=8.0, help="seconds between items")
    args = parser.parse_args()
    key = Path(args.key_file).read_text().strip() if args.key_file else ""
    key = key or os.environ.get("TICKER_DEMO_KEY", "")
    rng = random.Random()
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=args.base, headers=headers, timeout=5) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):  # the API may still be starting
                client.post("/v1/items", json=demo_items(rng))
            time.sleep(args.every)


if __name__ == "__main__":
    main()

"""Micro-benchmark of the duplicate decision: CPU per item against windows of two sizes.

What one ingest job spends on story matching, in one process, without I/O: the new
headline's facts (:func:`workers.storyfacts.extract`), the index lookup and the full
comparisons (:meth:`workers.storyindex.StoryIndex.best`), and filing the item when it is
published (:meth:`StoryIndex.add`; a held one is not). The window is filled first with
distinct headlines made from agency-style templates in English, Spanish and Arabic
(numbers, places and people varied), so hot keys (a country, a common number) hold
thousands of items as a day of news would.

    python -m bench.run --scenario dedupe          # 100 and 50,000 items in the window
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from workers.storyfacts import extract
from workers.storyindex import StoryIndex

__all__ = ["TEMPLATES", "headlines", "run"]

PLACES = {
    "en": [
        "Gaza",
        "Jenin",
        "Kyiv",
        "Odesa",
        "Khartoum",
        "Niger",
        "Mali",
        "Beirut",
        "Tehran",
        "Manila",
        "Lagos",
        "Sao",
        "Paulo",
    ],
    "es": [
        "Gaza",
        "Kiev",
        "Madrid",
        "Quito",
        "Lima",
        "Caracas",
        "Bogotá",
        "Santiago",
        "Valencia",
        "Sevilla",
        "Rosario",
    ],
    "ar": [
        "غزة",
        "جنين",
        "طولكرم",
        "حلب",
        "دمشق",
        "بيروت",
        "الخرطوم",
        "صنعاء",
        "منبج",
        "رفح",
        "نابلس",
    ],
}
PEOPLE = {
    "en": [
        "Trump",
        "Putin",
        "Macron",
        "Sinner",
        "Alcaraz",
        "Lecornu",
        "Bolsonaro",
        "Milei",
        "Netanyahu",
        "Zelenskiy",
    ],
    "es": [
        "Milei",
        "Boluarte",
        "Kast",
        "Petro",
        "Sánchez",
        "Maduro",
        "Lula",
        "Sheinbaum",
        "Rubiales",
        "Noboa",
    ],
    "ar": [
        "عباس",
        "الشرع",
        "روبيو",
        "ماكرون",
        "أردوغان",
        "نتنياهو",
        "البرهان",
        "حميدتي",
        "السيسي",
        "ميقاتي",
    ],
}
TEMPLATES = {
    "en": [
        "{n} killed in attack on army post in {p}, officials say",
        "{n} soldiers wounded in drone strike near {p}",
        "{q} says he will meet {r} in {p}",
        "Oil prices jump {n}% after strikes near {p}",
        "Magnitude {d} earthquake hits off {p}, no tsunami warning",
        "{q} beats {r} to win title in {p}",
        "Police arrest {n} after protest in {p}",
    ],
    "es": [
        "Al menos {n} muertos en un bombardeo contra una escuela en {p}",
        "{q} gana las elecciones con el {d} % de los votos",
        "La inflación sube al {d} % en {p}, según el instituto",
        "Detenidas {n} personas tras una protesta en {p}",
        "{q} se reunirá con {r} en {p} el viernes",
    ],
    "ar": [
        "استشهاد {n} فلسطينيين برصاص الاحتلال في {p}",
        "مقتل {n} أشخاص في انفجار سيارة مفخخة في {p}",
        "{q} يصل إلى {p} لبحث اتفاق وقف إطلاق النار",
        "ارتفاع أسعار النفط {d}% بعد الضربات على {p}",
        "اعتقال {n} أشخاص خلال اقتحام {p}",
    ],
}


def headlines(count: int, seed: int = 7) -> list[tuple[str, str]]:
    """``count`` (language, headline) pairs, distinct in their facts."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        lang = ("en", "es", "ar")[i % 3]
        text = rng.choice(TEMPLATES[lang]).format(
            n=rng.randint(2, 400),
            d=f"{rng.randint(1, 9)}.{rng.randint(0, 9)}",
            p=rng.choice(PLACES[lang]),
            q=rng.choice(PEOPLE[lang]),
            r=rng.choice(PEOPLE[lang]),
        )
        out.append((lang, f"{text} ({i})"))  # the serial keeps every item a fact apart
    return out


def _quantile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered)) - 1))]


def measure(window: int, items: int = 2000, seed: int = 7) -> dict[str, Any]:
    """CPU per item (us) of extract + best + add, against ``window`` items."""
    index = StoryIndex(window_ms=10**12)
    window_heads = headlines(window, seed)
    for i, (lang, text) in enumerate(window_heads):
        index.add(f"w{i}", lang, i, extract(text, lang))
    fresh = headlines(items, seed + 1)
    # Half of the new items are rewrites of window items: the full comparison runs too.
    rng = random.Random(seed)
    cpu: list[float] = []
    held = 0
    for j, (lang, text) in enumerate(fresh):
        if j % 2 and window:
            lang, base = window_heads[rng.randrange(window)]
            text = "BREAKING: " + base
        t0 = time.thread_time_ns()
        facts = extract(text, lang)
        found = index.best(lang, facts)
        if found is None:  # as in the worker: a held item is not published, so not filed
            index.add(f"n{j}", lang, window + j, facts)
        cpu.append((time.thread_time_ns() - t0) / 1000)
        held += found is not None
    return {
        "window": window,
        "items": items,
        "held": held,
        "cpu_us_p50": round(_quantile(cpu, 0.50), 1),
        "cpu_us_p99": round(_quantile(cpu, 0.99), 1),
        "cpu_us_mean": round(statistics.fmean(cpu), 1),
    }


def run(windows: tuple[int, ...] = (100, 50_000), items: int = 2000) -> list[dict[str, Any]]:
    return [measure(w, items) for w in windows]


def report(results: list[dict[str, Any]]) -> str:
    rows = [
        "| window items | new items | held | CPU us/item p50 | p99 | mean |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r['window']} | {r['items']} | {r['held']} | {r['cpu_us_p50']} "
            f"| {r['cpu_us_p99']} | {r['cpu_us_mean']} |"
        )
    return "\n".join(rows)

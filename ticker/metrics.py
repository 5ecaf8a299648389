"""Prometheus metrics, one registry per app.

Counters that workers produce (duplicates caught, webhook deliveries) live in
one Redis hash, so any API process can expose the cluster-wide totals. With
several API processes on one port (``TICKER_WORKERS``), set
``PROMETHEUS_MULTIPROC_DIR`` (``ticker serve`` does) and every scrape sums them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from redis.asyncio import Redis

from ticker.constants import Keys

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "incr_stat"]

# Worker-side counters kept in Redis: stat name -> (metric name, help, label name).
STATS = {
    "duplicates": ("ticker_duplicates_caught", "Items held back as duplicates.", "kind"),
    "webhook_deliveries": (
        "ticker_webhook_deliveries",
        "Webhook deliveries by outcome.",
        "outcome",
    ),
    "webpush": (
        "ticker_webpush_messages",
        "Web Push messages by outcome (sent, gone, retried, failed, expired).",
        "outcome",
    ),
    "webhook_failures": (
        "ticker_webhook_failures",
        "Failed webhook delivery attempts by reason.",
        "reason",
    ),
}


async def incr_stat(redis: Redis, keys: Keys, stat: str, label: str, by: int = 1) -> None:
    await redis.hincrby(keys.stats, f"{stat}|{label}", by)  # type: ignore[misc]


class _RedisStats:
    """Exposes the last values read from Redis (the /metrics handler refreshes them)."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.queue_depth = 0.0

    def collect(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily] = {}
        for field, value in self.values.items():
            stat, _, label = field.partition("|")
            if stat not in STATS:
                continue
            name, doc, label_name = STATS[stat]
            fam = families.setdefault(stat, CounterMetricFamily(name, doc, labels=[label_name]))
            fam.add_metric([label], value)
        yield from families.values()
        depth = GaugeMetricFamily("ticker_queue_depth", "Jobs waiting in the arq queue.")
        depth.add_metric([], self.queue_depth)
        yield depth


class Metrics:
    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # In multiprocess mode the values go to files; this registry only reads them.
        self.registry = CollectorRegistry()
        kw: dict[str, Any] = {"registry": None if self.multiprocess else self.registry}
        self.connections = Gauge(
            "ticker_connections",
            "Open streaming connections.",
            ["transport", "edition"],
            multiprocess_mode="livesum",
            **kw,
        )
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.events = Counter(
            "ticker_events_fanned_out", "Events the hub fanned out.", ["type"], **kw
        )
        self.deliveries = Counter("ticker_deliveries", "Events handed to clients.", **kw)
        self.lag = Histogram(
            "ticker_delivery_lag_seconds",
            "From the stream append to the hub's fan-out.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            **kw,
        )
        self.dropped = Counter(
            "ticker_clients_dropped", "Clients cut by the server.", ["transport", "reason"], **kw
        )
        self.intake = Counter(
            "ticker_intake_requests", "Intake API requests.", ["method", "status"], **kw
        )
        self.resets = Counter(
            "ticker_resets",
            "Resets sent: client (a resume past retention or from another epoch), node (a "
            "node that lost its place), epoch (Redis lost or replaced its data).",
            ["scope"],
            **kw,
        )
        self.refused = Counter(
            "ticker_connections_refused",
            "Streams refused at the per-address cap.",
            ["transport"],
            **kw,
        )
        self.rate_limited = Counter(
            "ticker_rate_limited",
            "Requests refused by a rate limit (ip, key, auth).",
            ["scope"],
            **kw,
        )
        self.redis_stats = _RedisStats()
        if self.multiprocess:
            MultiProcessCollector(self.registry)
        self.registry.register(self.redis_stats)  # type: ignore[arg-type]

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: per connect, and per event fanned out."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    async def render(self, redis: Redis, keys: Keys, queue: Redis | None = None) -> bytes:
        """``queue``: the arq queue's Redis when it is not the data Redis."""
        raw: Mapping[bytes, bytes] = await redis.hgetall(keys.stats)  # type: ignore[misc]
        self.redis_stats.values = {k.decode(): float(v) for k, v in raw.items()}
        self.redis_stats.queue_depth = float(await (queue or redis).zcard(keys.queue))
        return generate_latest(self.registry)

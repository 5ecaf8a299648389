"""Every Redis client the service builds: plain Redis, Sentinel or Cluster.

All of the service's keys share one hash tag, so on Redis Cluster they live on
one slot, owned by one master at a time. Rather than redis-py's RedisCluster
client (whose asyncio flavour in redis-py 5 has neither MULTI/WATCH, which
corrections use, nor sharded pub/sub), the data client is a plain client whose
connections go to the master owning that slot, found with CLUSTER SLOTS from
the seed nodes on every (re)connect; a MOVED reply drops the connection so the
next one asks again (like redis-py's Sentinel-managed connections do after a
failover). Lua scripts, transactions and SSUBSCRIBE then work unchanged.

arq cannot run on a cluster node: it touches the untagged key ``arq:abort`` in
the same MULTI as the job's own keys (CROSSSLOT), so with Cluster the queue
lives on a separate plain Redis or Sentinel (``TICKER_QUEUE_REDIS_URL``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import Connection, ConnectionPool, parse_url
from redis.asyncio.sentinel import Sentinel
from redis.crc import key_slot
from redis.exceptions import ConnectionError, RedisError, ResponseError

from ticker.config import Settings
from ticker.constants import Keys
from ticker.exceptions import ConfigError, NotReplicatedError

__all__ = [
    "API_OPTIONS",
    "WORKER_OPTIONS",
    "Connections",
    "ShardedPubSub",
    "SlotMovedError",
    "confirm_replicated",
    "connect",
    "open_pubsub",
    "parse_nodes",
    "slot_owner",
]

# Socket options of the API's clients: fail fast (TICKER_REDIS_TIMEOUT replaces
# these timeouts), notice dead peers. The worker keeps arq's defaults plus a
# connect timeout: with a socket read timeout, a cancelled arq worker was seen to
# swallow the cancellation and keep polling.
API_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 2,
    "socket_timeout": 2,
    "health_check_interval": 10,
}
WORKER_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 2}
# Replies meaning "this node does not serve the slot (now)": ask the cluster again.
_REDIRECTS = ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN")


class SlotMovedError(ConnectionError):
    """The node no longer serves the service's slot; the connection was dropped."""


@dataclass(slots=True)
class Connections:
    """The data client, the arq queue client (often the same) and the pub/sub kind."""

    data: ArqRedis
    queue: ArqRedis
    sharded: bool  # SPUBLISH/SSUBSCRIBE (Cluster) rather than PUBLISH/SUBSCRIBE

    async def aclose(self) -> None:
        await self.data.aclose()
        if self.queue is not self.data:
            await self.queue.aclose()


def parse_nodes(value: str, setting: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` -> addresses (IPv6 hosts in brackets)."""
    nodes = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        host, sep, port = part.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"{setting}: {part!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    if not nodes:
        raise ConfigError(f"{setting} names no node")
    return nodes


def _url_options(url: str) -> dict[str, Any]:
    """Credentials and options of a URL, without its address (Sentinel, Cluster)."""
    if not url.startswith("redis://"):
        # The managed connections here are plain TCP; refuse rather than drop TLS.
        raise ConfigError("with Sentinel or Cluster, TICKER_REDIS_URL must be redis:// (no TLS)")
    options: dict[str, Any] = dict(parse_url(url))
    for name in ("host", "port", "path", "connection_class"):
        options.pop(name, None)
    return options


def connect(settings: Settings, options: dict[str, Any] | None = None) -> Connections:
    """Build the clients the settings describe (no I/O until first use), with
    ``options`` (socket timeouts...) for every connection."""
    if options is None:
        # Short timeouts: with Redis hung or gone, the intake answers 503 quickly.
        timeout = settings.redis_timeout
        options = {**API_OPTIONS, "socket_connect_timeout": timeout, "socket_timeout": timeout}
    options = dict(options)
    keys = Keys(settings.redis_prefix)
    sharded = False
    if settings.redis_cluster_nodes:
        seeds = parse_nodes(settings.redis_cluster_nodes, "TICKER_REDIS_CLUSTER_NODES")
        node_options = {**_url_options(settings.redis_url), **options}
        node_options.pop("db", None)  # a cluster has only db 0
        pool = ConnectionPool(
            connection_class=SlotOwnerConnection,
            resolver=SlotResolver(seeds, key_slot(keys.tag.encode()), node_options),
            **node_options,
        )
        data = ArqRedis(connection_pool=pool)
        sharded = True
    elif settings.redis_sentinels:
        data = _sentinel_master(settings, options)
    else:
        data = ArqRedis.from_url(settings.redis_url, **options)
    if settings.queue_redis_url:
        queue = ArqRedis.from_url(settings.queue_redis_url, **options)
    elif sharded:
        raise ConfigError(
            "arq cannot use Redis Cluster: set TICKER_QUEUE_REDIS_URL (a plain Redis for the queue)"
        )
    else:
        queue = data
    return Connections(data, queue, sharded)


def _sentinel_master(settings: Settings, options: dict[str, Any]) -> ArqRedis:
    if not settings.redis_sentinel_master:
        raise ConfigError("TICKER_REDIS_SENTINELS needs TICKER_REDIS_SENTINEL_MASTER")
    nodes = parse_nodes(settings.redis_sentinels, "TICKER_REDIS_SENTINELS")
    sentinel = Sentinel(
        nodes, sentinel_kwargs={"socket_connect_timeout": 1, "socket_timeout": 1}, **options
    )
    master: ArqRedis = sentinel.master_for(
        settings.redis_sentinel_master, redis_class=ArqRedis, **_url_options(settings.redis_url)
    )
    return master


class SlotResolver:
    """Finds the master serving one slot, asking the known nodes in turn."""

    def __init__(self, seeds: list[tuple[str, int]], slot: int, options: dict[str, Any]) -> None:
        self.nodes = list(seeds)
        self.slot = slot
        self.options = {**options, "socket_connect_timeout": 1, "socket_timeout": 1}
        self._lock = asyncio.Lock()

    async def owner(self) -> tuple[str, int]:
        async with self._lock:
            errors = []
            for host, port in random.sample(self.nodes, len(self.nodes)):
                try:
                    found, known = await slot_owner(host, port, self.slot, self.options)
                except (RedisError, OSError) as exc:
                    errors.append(f"{host}:{port}: {exc}")
                    continue
                # Remember every node the cluster names, in case the seeds go away.
                self.nodes.extend(n for n in known if n not in self.nodes)
                if found is not None:
                    return found
                errors.append(f"{host}:{port}: slot {self.slot} has no master")
            raise ConnectionError("no cluster node named the slot's master: " + "; ".join(errors))


async def slot_owner(
    host: str, port: int, slot: int, options: dict[str, Any] | None = None
) -> tuple[tuple[str, int] | None, list[tuple[str, int]]]:
    """(master of ``slot`` or None, every node listed) as one node sees the cluster."""
    client = Redis(host=host, port=port, **(options or {}))
    try:
        ranges = await client.execute_command("CLUSTER", "SLOTS")
    finally:
        await client.aclose()
    owner = None
    known = []
    for start, end, *nodes in ranges:
        addresses = [(_str(n[0]) or host, int(n[1])) for n in nodes]
        known.extend(addresses)
        if start <= slot <= end and addresses:
            owner = addresses[0]
    return owner, known


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SlotOwnerConnection(Connection):
    """A connection to whichever master serves the slot when it connects."""

    def __init__(self, *, resolver: SlotResolver, **kwargs: Any) -> None:
        self.resolver = resolver
        super().__init__(**kwargs)

    async def connect(self) -> None:
        if not self.is_connected:
            self.host, self.port = await self.resolver.owner()
        await super().connect()

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except ResponseError as exc:
            if str(exc).split(" ", 1)[0] in _REDIRECTS:
                await self.disconnect()
                raise SlotMovedError(f"{self.host}:{self.port} answered {exc}") from exc
            raise


class ShardedPubSub(PubSub):
    """A PubSub that can SSUBSCRIBE (redis-py 5's asyncio client cannot).

    Shard channels are kept in ``channels`` so the base class reads messages;
    ``smessage`` is delivered like ``message``. A ``sunsubscribe`` the client
    did not ask for means the slot moved: raise, so the subscriber reconnects.
    """

    PUBLISH_MESSAGE_TYPES = ("message", "pmessage", "smessage")  # type: ignore[assignment]

    async def ssubscribe(self, *channels: str) -> None:
        await self.execute_command("SSUBSCRIBE", *channels)
        encode = self.encoder.encode
        self.channels.update({encode(c): None for c in channels})

    async def on_connect(self, connection: Connection) -> None:
        if self.channels:
            await self.execute_command("SSUBSCRIBE", *self.channels)

    async def handle_message(self, response: Any, ignore_subscribe_messages: bool = False) -> Any:
        if isinstance(response, list) and response and _str(response[0]) == "sunsubscribe":
            with contextlib.suppress(Exception):
                await self.reset()
            raise SlotMovedError("the server dropped the shard channel subscription")
        return await super().handle_message(response, ignore_subscribe_messages)


def open_pubsub(redis: Redis, *, sharded: bool) -> PubSub:
    """A pub/sub connection from the data client's pool."""
    if sharded:
        return ShardedPubSub(redis.connection_pool, ignore_subscribe_messages=True)
    return redis.pubsub(ignore_subscribe_messages=True)


async def confirm_replicated(
    data: Redis, queue: Redis, keys: Keys, replicas: int, timeout_ms: int
) -> None:
    """Return once ``replicas`` replicas hold every write already acknowledged
    to this process on each client; raise UnavailableError if they do not in
    ``timeout_ms``. A no-op when ``replicas`` is 0.

    WAIT counts the writes of its own connection, and a pool may have used
    others; so a small write on one connection (the barrier) goes first: the
    replication stream is ordered, so a replica past it holds all before it.
    """
    if replicas <= 0:
        return
    for client in (data,) if queue is data else (data, queue):
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(keys.replication_barrier, "1", px=60_000)
            pipe.execute_command("WAIT", replicas, timeout_ms)
            _, acked = await pipe.execute()
        if int(acked) < replicas:
            raise NotReplicatedError(
                f"{acked} of {replicas} replicas confirmed the write in {timeout_ms} ms"
            )

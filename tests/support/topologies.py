"""Redis topologies started by the tests: a Cluster of three masters, and a
master with a replica and three Sentinels; loopback, free ports, temp dirs."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import redis as redis_sync

from tests.support.helpers import wait_until
from ticker.embedded_redis import RedisProcess, find_redis_server, free_port

__all__ = ["ClusterNodes", "SentinelGroup", "migrate_slot", "move_slot"]


def _cli(port: int, *args: str) -> Any:
    with redis_sync.Redis(port=port, socket_timeout=5) as r:
        return r.execute_command(*args)


class ClusterNodes:
    """Three redis-server masters in cluster mode, slots spread by redis-cli."""

    def __init__(self, count: int = 3) -> None:
        self.nodes = [
            RedisProcess(
                extra=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "3000",
                    # The bus port, named: the default (port + 10000) may not exist.
                    "--cluster-port",
                    str(free_port()),
                )
            )
            for _ in range(count)
        ]

    @property
    def seeds(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> ClusterNodes:
        for node in self.nodes:
            node.start()
        cli = str(Path(find_redis_server()).with_name("redis-cli"))
        addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for node in self.nodes:
            wait_until(
                lambda port=node.port: b"cluster_state:ok" in _cli(port, "CLUSTER", "INFO"),
                30,
                what="cluster_state:ok",
            )
        return self

    def owner_of(self, key: str) -> int:
        """The port of the master serving ``key``'s slot."""
        slot = _cli(self.nodes[0].port, "CLUSTER", "KEYSLOT", key)
        for start, end, master, *_ in _cli(self.nodes[0].port, "CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(master[1])
        raise AssertionError(f"no master for slot {slot}")

    def close(self) -> None:
        for node in self.nodes:
            node.close()


class SentinelGroup:
    """A master, one replica and three Sentinels (quorum 2) watching them."""

    name = "tickermaster"

    def __init__(self, down_after_ms: int = 1500) -> None:
        fast_sync = ("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")
        self.master = RedisProcess(appendonly=True, extra=fast_sync)
        self.replica = RedisProcess(appendonly=True, extra=fast_sync)
        self.down_after_ms = down_after_ms
        self.tmp = tempfile.TemporaryDirectory(prefix="ticker-sentinel-")
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def start(self) -> SentinelGroup:
        self.master.start()
        self.replica.extra += ("--replicaof", "127.0.0.1", str(self.master.port))
        self.replica.start()
        wait_until(
            lambda: _cli(self.replica.port, "INFO", "replication")["master_link_status"] == "up",
            30,
            what="the replica to sync",
        )
        for port in self.sentinel_ports:
            conf = Path(self.tmp.name) / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.tmp.name}\n"
                f"sentinel monitor {self.name} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.name} 5000\n"
                f"sentinel parallel-syncs {self.name} 1\n"
            )
            self.sentinels.append(
                subprocess.Popen(
                    [find_redis_server(), str(conf), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in self.sentinel_ports:
            # Each Sentinel must know the replica and the two other Sentinels.
            wait_until(
                lambda port=port: (
                    _cli(port, "SENTINEL", "CKQUORUM", self.name).startswith(b"OK 3 usable")
                    and len(_cli(port, "SENTINEL", "REPLICAS", self.name)) == 1
                ),
                30,
                what=f"sentinel {port} to see the group",
            )
        return self

    def master_port(self) -> int:
        """The master's port as a Sentinel reports it now."""
        _, port = _cli(self.sentinel_ports[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
        return int(port)

    def close(self) -> None:
        for proc in self.sentinels:
            proc.terminate()
            proc.wait(10)
        self.replica.close()
        self.master.close()
        self.tmp.cleanup()


def move_slot(cluster: ClusterNodes, slot: int, to_port: int) -> None:
    """Give an empty slot to another master (CLUSTER SETSLOT ... NODE on every node,
    the new owner first), and wait until every node agrees."""
    ids = {n.port: _cli(n.port, "CLUSTER", "MYID").decode() for n in cluster.nodes}
    order = [to_port] + [p for p in ids if p != to_port]
    for port in order:
        _cli(port, "CLUSTER", "SETSLOT", slot, "NODE", ids[to_port])

    def agreed() -> bool:
        for node in cluster.nodes:
            for start, end, master, *_ in _cli(node.port, "CLUSTER", "SLOTS"):
                if start <= slot <= end and int(master[1]) != to_port:
                    return False
        return True

    wait_until(agreed, 30, what=f"slot {slot} to move to {to_port}")


def migrate_slot(cluster: ClusterNodes, slot: int, to_port: int) -> None:
    """Reshard one slot with its keys to another master, as `redis-cli --cluster
    reshard` does: IMPORTING/MIGRATING, MIGRATE the keys, then assign the slot."""
    ids = {n.port: _cli(n.port, "CLUSTER", "MYID").decode() for n in cluster.nodes}
    from_port = next(
        int(master[1])
        for start, end, master, *_ in _cli(to_port, "CLUSTER", "SLOTS")
        if start <= slot <= end
    )
    _cli(to_port, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[from_port])
    _cli(from_port, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[to_port])
    while keys := _cli(from_port, "CLUSTER", "GETKEYSINSLOT", slot, 100):
        _cli(from_port, "MIGRATE", "127.0.0.1", to_port, "", 0, 5000, "KEYS", *keys)
    move_slot(cluster, slot, to_port)

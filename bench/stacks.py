"""The servers under test, each started privately on loopback for one scenario:
Ticker (a private Redis, ``ticker serve``, a worker when items go through the
intake) and Nchan (Debian's nginx with libnginx-mod-nchan, a private config).

Each stack publishes the same event: Ticker's envelope of an item whose
headline carries the benchmark marker; Nchan gets those very bytes as its
message, so both servers move the same payload to every subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson
from redis.asyncio import Redis

from bench.procstat import cpu_seconds, tree
from ticker.config import Settings
from ticker.constants import Keys
from ticker.embedded_redis import RedisProcess, free_port
from workers.items import build_item, iso
from workers.publish import Publisher

__all__ = ["NCHAN_MODULE", "NchanStack", "Stack", "TickerStack", "nchan_available", "payload"]

NCHAN_MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
BENCH_KEY = "bench-" + os.urandom(8).hex()
SETTINGS = Settings()
# Posted story headlines come from other seeds than the pre-filled window's.
STORY_SEED = 1_000_000


def marker(seq: int, sent_us: int) -> str:
    return f"bseq={seq:06d} bt={sent_us:016d}"


def headline(seq: int, sent_us: int, story: bool = False) -> str:
    if story:  # an agency-style headline, so the duplicate decision has real work
        from bench.dedupe import headlines

        _, text = headlines(1, seed=STORY_SEED + seq)[0]
        return f"{text} {marker(seq, sent_us)}"
    return f"Benchmark item {marker(seq, sent_us)} crosses the wire"


def submission(seq: int, sent_us: int, force: bool = False, story: bool = False) -> dict[str, Any]:
    """What an editor posts for benchmark item ``seq``."""
    return {
        **({"force": True} if force else {}),
        "headline": headline(seq, sent_us, story),
        "edition": "en",
        "urgency": 3,
        "categories": ["world"],
        "regions": ["europe"],
        "source": "Benchmark Wire",
        "url": f"https://news.example/bench/{seq}",
    }


def item(seq: int, sent_us: int) -> dict[str, Any]:
    """The item as the worker would publish it."""
    now = datetime.now(UTC)
    return build_item(
        f"bench{seq:06d}{sent_us}",
        submission(seq, sent_us),
        version=1,
        created_at=iso(now),
        published_at=iso(now),
        now=now,
        settings=SETTINGS,
    )


def payload(seq: int, sent_us: int) -> bytes:
    """Ticker's event JSON for item ``seq`` (as Nchan's message, too)."""
    return orjson.dumps(
        {
            "id": f"{sent_us // 1000}-0",
            "type": "item.published",
            "item": item(seq, sent_us),
        }
    )


def nchan_available() -> bool:
    return shutil.which("nginx") is not None and NCHAN_MODULE.exists()


class Stack(Protocol):
    name: str
    port: int

    def start(self, via: str, prefill: int = 0) -> None: ...
    def stop(self) -> None: ...
    def server_pids(self) -> list[int]: ...
    def other_pids(self) -> dict[str, list[int]]: ...
    def path(self, transport: str) -> str: ...
    async def publisher(self, via: str, force: bool = False, story: bool = False) -> Publish: ...


class Publish(Protocol):
    """Publishes event ``seq``; returns its stream id where the server tells it."""

    async def __call__(self, seq: int, sent_us: int) -> str | None: ...
    async def close(self) -> None: ...


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class TickerStack:
    """A private Redis, ``ticker serve --workers N`` and, for intake runs, a worker."""

    def __init__(self, workers: int = 2, source: str | None = None, name: str = "ticker") -> None:
        self.workers = workers
        # Another revision's tree (--baseline): its ticker package serves instead.
        self.source = source
        self.name = name
        self.port = free_port()
        self.redis: RedisProcess | None = None
        self.api: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.extra_env: dict[str, str] = {}  # a scenario's own settings

    def env(self) -> dict[str, str]:
        assert self.redis is not None
        return {
            **os.environ,
            "TICKER_REDIS_URL": self.redis.url,
            "TICKER_HOST": "127.0.0.1",
            "TICKER_PORT": str(self.port),
            "TICKER_WORKERS": str(self.workers),
            "TICKER_LOG_LEVEL": "warning",
            "TICKER_API_KEYS": json.dumps(
                # admin: the side by side with "force": true (no near-duplicate search)
                [{"name": "bench", "key": BENCH_KEY, "scopes": ["publish", "admin"]}]
            ),
            # A benchmark is one client address opening thousands of streams and
            # posting fast: the per-address caps would (rightly) refuse it.
            "TICKER_RATE_LIMIT_PER_KEY": "",
            "TICKER_RATE_LIMIT_PER_IP": "",
            "TICKER_MAX_CONNECTIONS_PER_IP": "0",
            **({"PYTHONPATH": self.source} if self.source else {}),
            **self.extra_env,
        }

    def start(self, via: str, prefill: int = 0) -> None:
        self.redis = RedisProcess()
        self.redis.start()
        if prefill:
            asyncio.run(prefill_window(self.redis.url, prefill))
        env = self.env()
        py = sys.executable
        cwd = self.source or None
        self.api = subprocess.Popen([py, "-m", "ticker", "serve"], env=env, cwd=cwd)
        if via == "intake":
            self.worker = subprocess.Popen([py, "-m", "ticker", "worker"], env=env, cwd=cwd)
        _wait_http(f"http://127.0.0.1:{self.port}/readyz", self.api)
        if self.worker is not None:
            self._wait_worker()
        # Every API process must hold its subscription before the clients come.
        deadline = time.monotonic() + 30
        while len(self.server_pids()) < self.workers + (self.workers > 1):
            if time.monotonic() > deadline:
                raise RuntimeError("API processes did not start")
            time.sleep(0.1)
        time.sleep(1.0)

    def _wait_worker(self, timeout: float = 120) -> None:
        """Until the worker polls its queue (startup done: the window indexed) and its word
        lists have loaded (its CPU goes quiet), so its start is not counted as item work."""
        from arq.constants import health_check_key_suffix
        from redis import Redis as SyncRedis

        assert self.redis is not None and self.worker is not None
        key = Keys(SETTINGS.redis_prefix).queue + health_check_key_suffix
        client = SyncRedis.from_url(self.redis.url)
        deadline = time.monotonic() + timeout
        try:
            while not client.exists(key):
                if self.worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the worker did not start")
                time.sleep(0.1)
        finally:
            client.close()
        before = cpu_seconds([self.worker.pid])
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = cpu_seconds([self.worker.pid])
            if now - before < 0.05:  # under a tenth of a core
                return
            before = now
        raise RuntimeError("the worker did not settle")

    def stop(self) -> None:
        _stop(self.api)
        _stop(self.worker)
        if self.redis is not None:
            self.redis.close()

    def server_pids(self) -> list[int]:
        return tree(self.api.pid) if self.api else []

    def other_pids(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        if self.redis is not None and self.redis.proc is not None:
            out["redis"] = [self.redis.proc.pid]
        if self.worker is not None:
            out["worker"] = tree(self.worker.pid)
        return out

    def path(self, transport: str) -> str:
        return "/v1/ws?edition=en" if transport == "ws" else "/v1/stream?edition=en"

    async def publisher(self, via: str, force: bool = False, story: bool = False) -> Publish:
        if via == "intake":
            pub = IntakePublish(f"http://127.0.0.1:{self.port}", force, story)
            await pub.open()
            return pub
        assert self.redis is not None
        return DirectPublish(self.redis.url, self.source)


async def prefill_window(url: str, count: int) -> None:
    """``count`` published items in the English duplicate window, as a worker leaves them
    (item, status, story facts, the recent set), with no event: screens connect to an
    empty ticker, the worker starts with a day's history to match against."""
    from bench.dedupe import headlines
    from workers.stories import facts_of

    redis = Redis.from_url(url)
    keys = Keys(SETTINGS.redis_prefix)
    now_ms = int(time.time() * 1000)
    try:
        for start in range(0, count, 1000):
            async with redis.pipeline(transaction=False) as pipe:
                for i in range(start, min(count, start + 1000)):
                    _, text = headlines(1, seed=i)[0]
                    doc = {**item(i, now_ms * 1000), "id": f"prefill{i:08d}", "headline": text}
                    facts = facts_of({"headline": text, "edition": "en"})
                    pipe.hset(
                        keys.item(doc["id"]),
                        mapping={
                            "item": orjson.dumps(doc),
                            "status": "published",
                            "published_version": 1,
                            "facts": orjson.dumps(facts.to_json()),
                        },
                    )
                    pipe.zadd(keys.recent("en"), {doc["id"]: now_ms - count + i})
                await pipe.execute()
    finally:
        await redis.aclose()


class DirectPublish:
    """The worker's own atomic publish step (Lua), called without the queue:
    measures the fan-out from the moment Redis publishes."""

    def __init__(self, url: str, source: str | None = None) -> None:
        self.redis = Redis.from_url(url)
        self.publisher = Publisher(
            self.redis, Keys(SETTINGS.redis_prefix), maxlen=10_000, retention_seconds=3600
        )
        if source:
            # A baseline's own step, as its worker would run it (its servers may not
            # read what a later step publishes); it ignores any later KEYS and ARGV.
            script = Path(source, "ticker", "lua", "publish.lua").read_text()
            self.publisher._script = self.redis.register_script(script)

    async def __call__(self, seq: int, sent_us: int) -> str | None:
        outcome = await self.publisher.publish_new(item(seq, sent_us))
        if outcome.status != "published":
            raise RuntimeError(f"publish {seq}: {outcome}")
        return outcome.ref

    async def close(self) -> None:
        await self.redis.aclose()


class IntakePublish:
    """``POST /v1/items``, as an editor's tool would: the whole pipeline.

    A pool of kept-alive HTTP/1.1 connections written by hand (an HTTP library costs the
    runner more CPU than the server spends answering), so the runner can offer the
    schedule's rate: each call takes a free connection, and up to :attr:`concurrency`
    posts are in flight at once.
    """

    def __init__(
        self, base: str, force: bool = False, story: bool = False, connections: int = 16
    ) -> None:
        self.force = force
        self.story = story
        self.base = base
        host_port = base.split("://", 1)[1]
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.concurrency = connections
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._open: list[asyncio.StreamWriter] = []

    async def open(self) -> None:
        for _ in range(self.concurrency):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self._open.append(writer)
            self._idle.put_nowait((reader, writer))

    def request(self, seq: int, sent_us: int) -> bytes:
        body = orjson.dumps(submission(seq, sent_us, self.force, self.story))
        return (
            b"POST /v1/items HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (self.host.encode(), BENCH_KEY.encode(), len(body), body)
        )

    async def __call__(self, seq: int, sent_us: int) -> str | None:
        reader, writer = await self._idle.get()
        writer.write(self.request(seq, sent_us))
        head = await reader.readuntil(b"\r\n\r\n")
        status = head[: head.find(b"\r\n")]
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length) if length else b""
        self._idle.put_nowait((reader, writer))
        if b" 202 " not in status:
            raise RuntimeError(f"intake {seq}: {status!r} {body[:300]!r}")
        return None  # published later, by the worker

    async def close(self) -> None:
        for writer in self._open:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


NGINX_CONF = """\
worker_processes {workers};
worker_rlimit_nofile 20000;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
load_module {module};
events {{ worker_connections 16000; multi_accept on; }}
http {{
  access_log off;
  keepalive_requests 1000000;  # the publisher keeps one connection for every event
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  nchan_shared_memory_size 256M;
  server {{
    listen 127.0.0.1:{port} backlog=4096 reuseport;
    location = /ready {{ return 200; }}
    location = /pub {{
      nchan_publisher;
      nchan_channel_id bench;
      nchan_message_buffer_length 10000;
      nchan_message_timeout 1h;
    }}
    location = /sub {{
      nchan_subscriber;
      nchan_channel_id bench;
    }}
  }}
}}
"""


class NchanStack:
    """nginx with the Nchan module, one channel, SSE and WebSocket subscribers."""

    name = "nchan"

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self.port = free_port()
        self.dir: tempfile.TemporaryDirectory[str] | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, via: str, prefill: int = 0) -> None:
        if via != "direct":
            raise ValueError("Nchan has no intake")
        self.dir = tempfile.TemporaryDirectory(prefix="bench-nchan-")
        conf = Path(self.dir.name, "nginx.conf")
        conf.write_text(
            NGINX_CONF.format(
                workers=self.workers, dir=self.dir.name, module=NCHAN_MODULE, port=self.port
            )
        )
        self.proc = subprocess.Popen(
            ["nginx", "-p", self.dir.name, "-c", str(conf), "-g", "daemon off;"]
        )
        _wait_http(f"http://127.0.0.1:{self.port}/ready", self.proc)
        deadline = time.monotonic() + 30
        while len(self.server_pids()) < self.workers + 1:
            if time.monotonic() > deadline:
                raise RuntimeError("nginx workers did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(3)  # SIGQUIT: graceful stop
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.dir is not None:
            self.dir.cleanup()

    def server_pids(self) -> list[int]:
        return tree(self.proc.pid) if self.proc else []

    def other_pids(self) -> dict[str, list[int]]:
        return {}

    def path(self, transport: str) -> str:
        return "/sub"

    async def publisher(self, via: str, force: bool = False, story: bool = False) -> Publish:
        pub = RawPublish(self.port)
        await pub.open()
        return pub


class RawPublish:
    """POST /pub over one kept-alive connection, without an HTTP library's cost."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def __call__(self, seq: int, sent_us: int) -> str | None:
        assert self.reader is not None and self.writer is not None
        body = payload(seq, sent_us)
        self.writer.write(
            b"POST /pub HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = head[: head.find(b"\r\n")]
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length:
            await self.reader.readexactly(length)
        if b" 201 " not in status and b" 202 " not in status:
            raise RuntimeError(f"nchan publish {seq}: {status!r}")
        return None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


STACKS = {"ticker": TickerStack, "nchan": NchanStack}

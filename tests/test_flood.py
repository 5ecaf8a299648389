"""A bounded slowloris and header flood against a real API process (issue 21): its memory
stays flat, every attacking connection is cut, and a normal client is served meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest

from tests.support.helpers import wait_for
from tests.support.procs import ApiProcess, running, service_env
from ticker.config import Settings

DRIBBLERS = 200  # sockets sending a request head a byte at a time
FLOODERS = 4  # sockets sending megabytes of one header
FLOOD_BYTES = 16 * 1024 * 1024  # each (the probe's figure; 8 of them took 163 MB before)
CHUNK = 64 * 1024
# Allowed RSS growth: 200 connections' protocols and buffers, and a read or two in flight;
# far below the 64 MiB the flood would leave held without the head limit.
GROWTH_BOUND = 24 * 1024 * 1024


def rss(pid: int) -> int:
    """The process's resident set size in bytes, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def dribble(port: int, cut: list[int]) -> None:
    """Send a head a byte at a time until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
    try:
        for byte in head:
            writer.write(bytes((byte,)))
            await writer.drain()
            if reader.at_eof() or getattr(reader, "_buffer", b""):  # answered
                break
            await asyncio.sleep(0.1)  # the attack's pace, not a wait for a condition
        data = await reader.read()
    except ConnectionError:
        data = b"reset"
    finally:
        writer.close()
    cut.append(1 if data else 0)


async def flood(port: int, cut: list[int]) -> None:
    """Send one endless header, megabytes of it, until the server answers or resets."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = 0
    try:
        while sent < FLOOD_BYTES and not reader.at_eof() and not getattr(reader, "_buffer", b""):
            writer.write(b"a" * CHUNK)
            await writer.drain()
            sent += CHUNK
        data = await asyncio.wait_for(reader.read(), 30)
    except ConnectionError:
        data = b"reset"
    finally:
        writer.close()
    cut.append(1 if data else 0)


@pytest.mark.timeout(120)
async def test_slowloris_and_header_flood_leave_memory_flat(settings: Settings) -> None:
    """200 dribbling sockets and 4 sending 16 MiB of one header: the API's RSS grows by a
    bounded amount, every attacker is cut (408 or 431), and /healthz is answered throughout."""
    env = service_env(redis_url=settings.redis_url, head_timeout_seconds="3")
    api = ApiProcess(env)
    with running(api):
        api.start()
        assert api.proc is not None
        pid = api.proc.pid
        async with httpx.AsyncClient(base_url=api.base, timeout=10) as http:
            for _ in range(20):  # warm up what a normal request allocates
                assert (await http.get("/healthz")).status_code == 200
            baseline = rss(pid)
            peak = baseline
            cut: list[int] = []
            attack = [asyncio.create_task(dribble(api.port, cut)) for _ in range(DRIBBLERS)]
            attack += [asyncio.create_task(flood(api.port, cut)) for _ in range(FLOODERS)]
            served = 0
            try:

                async def all_cut() -> bool:
                    nonlocal peak, served
                    peak = max(peak, rss(pid))
                    if (await http.get("/healthz")).status_code == 200:
                        served += 1
                    return len(cut) == len(attack)

                await wait_for(all_cut, 60, interval=0.05, what="every attacker to be cut")
            finally:
                for task in attack:
                    task.cancel()
                with contextlib.suppress(BaseException):
                    await asyncio.gather(*attack, return_exceptions=True)
            assert sum(cut) == len(attack), "an attacker was left open"
            assert served > 0
            growth = peak - baseline
            assert growth < GROWTH_BOUND, f"RSS grew by {growth / 2**20:.1f} MiB"
            assert (await http.get("/healthz")).status_code == 200

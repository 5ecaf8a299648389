"""Trusted proxies: the service warns, once, when it believes every peer's
X-Forwarded-For on an address other clients can reach."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.helpers import wait_for
from tests.support.procs import Proc, running, service_env
from ticker.config import Settings
from ticker.embedded_redis import RedisProcess, free_port
from ticker.serve.proxytrust import open_trust_warning, trusted_proxies

WARNING = "trusting X-Forwarded-For from every peer"


@pytest.mark.parametrize(
    ("host", "ticker_value", "uvicorn_env", "warns"),
    [
        ("0.0.0.0", "*", None, True),
        ("0.0.0.0", "", "*", True),  # uvicorn's own variable counts too
        ("::", "10.0.0.5, *", None, True),
        ("0.0.0.0", "172.30.80.10", "*", False),  # TICKER_ wins over uvicorn's
        ("0.0.0.0", "", None, False),  # default: 127.0.0.1 only
        ("127.0.0.1", "*", None, False),  # loopback: only this host can reach it
        ("::1", "*", None, False),
        ("localhost", "*", None, False),
    ],
)
def test_warning_rule(host: str, ticker_value: str, uvicorn_env: str | None, warns: bool) -> None:
    """The warning applies exactly when '*' is trusted (from either variable) on a
    non-loopback bind."""
    settings = Settings(host=host, forwarded_allow_ips=ticker_value)
    environ = {} if uvicorn_env is None else {"FORWARDED_ALLOW_IPS": uvicorn_env}
    assert (open_trust_warning(settings, environ) is not None) is warns
    assert trusted_proxies(Settings(), {}) == ["127.0.0.1"]


@pytest.mark.timeout(60)
async def test_serve_logs_the_warning_once(tmp_path: Path, redis_server: RedisProcess) -> None:
    """`ticker serve` on 0.0.0.0 with two processes trusting '*' logs the warning once and
    still serves; on loopback it logs none."""
    for host, expected in (("0.0.0.0", 1), ("127.0.0.1", 0)):
        log = tmp_path / f"serve-{host}.log"
        env = service_env(redis_server.url, host=host, workers=2, log_level="info")
        env["FORWARDED_ALLOW_IPS"] = "*"
        port = free_port()
        with running() as started:
            args = ["-m", "ticker", "serve", "--port", str(port)]
            started.append(Proc(args, env, log).start())
            # Both processes have started once each has logged its startup.
            await wait_for(
                lambda log=log: log.read_text().count("Application startup complete") >= 2,
                30,
                what="both API processes to start",
            )
        assert log.read_text().count(WARNING) == expected, log.read_text()

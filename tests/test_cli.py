"""The `ticker` command as a newcomer meets it: help, version, doctor, log lines."""

from __future__ import annotations

import argparse
import logging
import os
import pty
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis as redis_sync

from tests.support.procs import wait_until
from ticker.cli import parser
from ticker.embedded_redis import RedisProcess, free_port
from ticker.exceptions import ValidationError
from ticker.filters import Filter
from ticker.humanlog import HumanFormatter
from ticker.intake.schema import validate_item

ROOT = Path(__file__).resolve().parent.parent


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update({f"TICKER_{k.upper()}": v for k, v in settings.items()})
    return env


def ticker(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ticker", *args],
        env=_env(**settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bare_ticker_prints_help_and_version_answers() -> None:
    """`ticker` alone prints the help with every command and exits 0; --version too."""
    bare = ticker()
    assert bare.returncode == 0, bare.stderr
    for name in ("run", "serve", "worker", "doctor", "bridge"):
        assert f"    {name} " in bare.stdout
    version = ticker("--version")
    assert version.returncode == 0 and version.stdout.startswith("ticker 0.")


def test_every_option_has_help_text_and_shows_its_default() -> None:
    """Each option of each subcommand has help text, and help prints defaults."""
    top = parser()
    subs = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        assert issubclass(sub.formatter_class, argparse.ArgumentDefaultsHelpFormatter)
        for action in sub._actions:
            assert action.help, f"ticker {name} {action.option_strings} has no help text"
    worker = ticker("worker", "--help")
    assert "--log-format" in worker.stdout and "(default: json)" in worker.stdout
    run = ticker("run", "--help")
    for flag in ("--port", "--redis-port", "--data-dir", "--log-format"):
        assert flag in run.stdout


def test_bridge_help_names_its_token_variables() -> None:
    """`ticker bridge -h` tells where the push tokens come from."""
    done = ticker("bridge", "-h")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "TICKER_BRIDGE_FCM_TOKEN" in text and "TICKER_BRIDGE_APNS_TOKEN" in text


def test_serve_on_a_taken_port_says_so_in_one_line() -> None:
    """`ticker serve --port P` with P taken: one line naming the port and --port, exit 1."""
    port = free_port()
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # free_port keeps it bound
        holder.bind(("127.0.0.1", port))
        holder.listen()
        done = ticker("serve", "--port", str(port))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f":{port}:" in lines[0] and "--port" in lines[0], lines


def test_doctor_passes_a_good_configuration(tmp_path: Path) -> None:
    """With a reachable Redis and valid keys, doctor says ok to each check, the
    Redis version and that the fast lane is on, and exits 0."""
    keys = tmp_path / "keys.json"
    keys.write_text('[{"name": "desk", "key": "k-0123456789abcdef", "scopes": ["publish"]}]')
    server = RedisProcess()
    server.start()
    try:
        done = ticker(
            "doctor",
            redis_url=server.url,
            api_keys_file=str(keys),
            allowed_origins="https://news.example",
        )
    finally:
        server.close()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   Redis: version 7" in done.stdout
    assert "ok   API keys: 1 valid" in done.stdout
    assert "ok   fast lane: on" in done.stdout
    assert "FAIL" not in done.stdout


def test_doctor_names_each_problem_in_plain_words(tmp_path: Path) -> None:
    """An unreachable Redis, an unreadable keys file, an origin without a scheme and
    an unparsable proxy address each get a FAIL line, and doctor exits 1."""
    done = ticker(
        "doctor",
        "--timeout",
        "2",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        api_keys_file=str(tmp_path / "missing.json"),
        allowed_origins="news.example",
        forwarded_allow_ips="the-proxy",
    )
    assert done.returncode == 1
    fails = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert [f.split(":")[0] for f in fails] == [
        "FAIL Redis",
        "FAIL API keys",
        "FAIL origins",
        "FAIL proxy trust",
    ], done.stdout
    assert "No such file" in fails[1] and "news.example" in fails[2] and "the-proxy" in fails[3]
    assert "Traceback" not in done.stdout + done.stderr


def test_doctor_reports_a_setting_that_does_not_parse() -> None:
    """A TICKER_* variable of the wrong type is one FAIL line naming it."""
    done = ticker("doctor", port="eighty")
    assert done.returncode == 1
    assert done.stdout.startswith("FAIL settings: TICKER_PORT='eighty'")


def test_auto_log_format_is_human_on_a_terminal_and_json_otherwise() -> None:
    """`ticker run`'s default log format follows whether stdout is a terminal."""
    code = "from ticker.localrun import log_format; print(log_format('auto'))"
    piped = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True)
    assert piped.stdout.strip() == b"json"
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-c", code], env=_env(), stdout=follower)
        assert proc.wait(30) == 0
        assert os.read(leader, 100).strip() == b"human"
    finally:
        os.close(leader)
        os.close(follower)


def test_human_lines_are_short_and_carry_the_extras() -> None:
    """A human log line is time, level, message and key=value extras."""
    record = logging.LogRecord("ticker.access", logging.INFO, __file__, 1, "GET %s", ("/",), None)
    record.status = 200
    record.path = "/v1/items"
    line = HumanFormatter().format(record)
    assert line[8:] == " INFO  GET / path=/v1/items status=200"


@pytest.mark.timeout(90)
def test_arq_cron_lines_are_debug_lines(tmp_path: Path) -> None:
    """At info the worker logs no cron job start or finish (the sweeps); at debug it does."""
    server = RedisProcess()
    server.start()
    try:
        outputs = {}
        for level in ("info", "debug"):
            with redis_sync.Redis(port=server.port) as r:
                r.flushall()
                log = tmp_path / f"{level}.log"
                with log.open("wb") as fh:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "ticker", "worker", "--log-level", level],
                        env=_env(redis_url=server.url, log_format="human"),
                        stdout=fh,
                        stderr=subprocess.STDOUT,
                    )
                    try:
                        # sweep_expired runs at startup; once it is marked in progress,
                        # SIGTERM lets it finish (and log) before the worker exits.
                        wait_until(
                            lambda: r.keys("arq:in-progress:cron:sweep_expired*"),
                            30,
                            what="the sweep",
                        )
                    finally:
                        proc.send_signal(signal.SIGTERM)
                        proc.wait(30)
                outputs[level] = log.read_text()
    finally:
        server.close()
    assert "Starting worker" in outputs["info"] and "1 jobs complete" in outputs["info"]
    assert "cron:sweep_expired" not in outputs["info"].split("\n", 1)[1]
    assert "→ cron:sweep_expired" in outputs["debug"]
    assert "← cron:sweep_expired" in outputs["debug"]


def test_edition_errors_list_editions_in_the_configured_order() -> None:
    """The stream's and the intake's edition errors name the editions alike."""
    editions = ("en", "ar", "es")
    with pytest.raises(ValidationError) as stream:
        Filter.parse({"edition": ["fr"]}, editions)
    with pytest.raises(ValidationError) as intake:
        validate_item({"headline": "x", "edition": "fr"}, editions)
    assert stream.value.message.endswith("en, ar, es")
    assert intake.value.message.endswith("en, ar, es")

"""The fast paths' guard: what they lean on in uvicorn, checked at startup, and the
switch that turns them off.

The fast lane (fastlane.py), parking (parking.py) and the hub's direct writes
drive uvicorn's protocol classes through attributes uvicorn does not document.
They run only while all of this holds:

- ``TICKER_FAST_PATHS`` is on (the default);
- uvicorn and websockets are the versions they were tested with (``TESTED``);
- every class and attribute in ``NEEDS`` is there;
- nothing inside the lane or a parking step has raised yet.

Else every stream takes the plain ASGI path: clients get the same bytes, each
stream only costs more. Startup logs one warning for what is missing; the
first exception inside the lane or a parking step logs one error (with its
traceback), sends that request down the ASGI path and switches the fast paths
off for the rest of the process.
"""

from __future__ import annotations

import dis
import importlib
import logging
from importlib.metadata import PackageNotFoundError, version
from types import CodeType

__all__ = ["NEEDS", "TESTED", "FastPaths", "check", "fast_paths"]

log = logging.getLogger("ticker.server")

# (lowest, past the highest) minor versions tested, as pyproject.toml pins them.
TESTED: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "uvicorn": ((0, 55), (0, 56)),
    "websockets": ((17, 4), (17, 5)),
}

# module, class, the attributes the fast paths read, set or call on it: methods
# and class attributes, or instance attributes the class's own code assigns.
NEEDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "uvicorn.protocols.http.httptools_impl",
        "HttpToolsProtocol",
        (
            "data_received",
            "on_headers_complete",
            "on_message_complete",
            "handle_websocket_upgrade",
            "app_state",
            "client",
            "config",
            "connections",
            "cycle",
            "flow",
            "headers",
            "parser",
            "pipeline",
            "scheme",
            "server_state",
            "transport",
            "url",
        ),
    ),
    (
        "uvicorn.protocols.http.httptools_impl",
        "RequestResponseCycle",
        ("chunked_encoding", "response_complete", "transport"),
    ),
    ("uvicorn.protocols.http.flow_control", "FlowControl", ("read_paused",)),
    (
        "uvicorn.protocols.websockets.websockets_sansio_impl",
        "WebSocketsSansIOProtocol",
        ("data_received", "stop_keepalive", "close_sent", "conn", "connections", "transport"),
    ),
    ("uvicorn.server", "ServerState", ("connections", "default_headers")),
    (
        "uvicorn.config",
        "Config",
        (
            "forwarded_allow_ips",
            "limit_concurrency",
            "loaded_app",
            "proxy_headers",
            "root_path",
            "ws_per_message_deflate",
            "ws_protocol_class",
        ),
    ),
)


class FastPaths:
    """The one switch for the fast lane, parking and direct writes in a server process."""

    __slots__ = ("on",)

    def __init__(self, on: bool) -> None:
        self.on = on

    def fail(self, where: str, exc: BaseException) -> None:
        """Something inside a fast path raised: off for good, said once."""
        if self.on:
            self.on = False
            log.error(
                "fast paths off: %s raised; every stream takes the ASGI path from now on",
                where,
                exc_info=exc,
            )


def fast_paths(wanted: bool) -> FastPaths:
    """The switch for a new server: on if ``wanted`` (TICKER_FAST_PATHS) and nothing
    is missing."""
    if not wanted:
        log.info("fast paths off (TICKER_FAST_PATHS=0): every stream takes the ASGI path")
        return FastPaths(False)
    gaps = check()
    if gaps:
        log.warning(
            "fast paths off, every stream takes the ASGI path: %s (tested with %s)",
            "; ".join(gaps),
            ", ".join(f"{name} {lo[0]}.{lo[1]}" for name, (lo, _) in TESTED.items()),
        )
        return FastPaths(False)
    return FastPaths(True)


def check() -> list[str]:
    """What the fast paths need and this install lacks (empty: all there)."""
    gaps = []
    for name, (lowest, past) in TESTED.items():
        have = _minor(name)
        if have is None or not lowest <= have < past:
            gaps.append(f"{name} {_version(name)} is not the tested {lowest[0]}.{lowest[1]}")
    for module_name, class_name, attributes in NEEDS:
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            gaps.append(f"no {module_name}.{class_name}")
            continue
        assigned = _assigned(cls)
        absent = [a for a in attributes if not hasattr(cls, a) and a not in assigned]
        if absent:
            gaps.append(f"{class_name} has no {', '.join(absent)}")
    return gaps


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "(not installed)"


def _minor(name: str) -> tuple[int, int] | None:
    try:
        major, minor = version(name).split(".")[:2]
        return int(major), int(minor)
    except (PackageNotFoundError, ValueError):
        return None


def _assigned(cls: type) -> set[str]:
    """The attribute names the class's own functions assign (``self.x = ...``): its
    instance attributes, which the class itself does not hold."""
    names: set[str] = set()
    for klass in cls.__mro__:
        for value in vars(klass).values():
            code = getattr(getattr(value, "__func__", value), "__code__", None)
            if code is not None:
                _collect(code, names)
    return names


def _collect(code: CodeType, names: set[str]) -> None:
    names.update(i.argval for i in dis.get_instructions(code) if i.opname == "STORE_ATTR")
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _collect(const, names)

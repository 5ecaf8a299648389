"""Structured JSON logs, and the request id that ties a request's lines together."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from contextvars import ContextVar

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticker.humanlog import FIELDS, CronChatter, HumanFormatter
from ticker.metrics import Metrics

__all__ = [
    "JsonFormatter",
    "RequestContext",
    "configure_logging",
    "new_request_id",
    "request_id",
]

request_id: ContextVar[str | None] = ContextVar("ticker_request_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_log = logging.getLogger("ticker.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if rid := request_id.get():
            doc["request_id"] = rid
        for key in FIELDS:
            if hasattr(record, key):
                doc[key] = getattr(record, key)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def configure_logging(level: str, fmt: str = "json") -> None:
    """Everything to stderr: JSON lines, or ``fmt="human"`` lines (ticker.humanlog)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(HumanFormatter() if fmt == "human" else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    arq_worker = logging.getLogger("arq.worker")
    if not any(isinstance(f, CronChatter) for f in arq_worker.filters):
        arq_worker.addFilter(CronChatter())


def new_request_id(given: bytes) -> str:
    """The client's X-Request-Id when sane, else a new one."""
    text = given.decode("latin-1")
    # 128 random bits as 32 hex digits, as uuid4().hex but without the UUID object.
    return text if _SANE_ID.match(text) else os.urandom(16).hex()


class RequestContext:
    """ASGI middleware: a request id per request (kept from X-Request-Id when sane),
    echoed in the response, an access log line and the intake request counter."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value
                break
        rid = new_request_id(given)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path: str = scope["path"]
            if scope["type"] == "http" and path.startswith("/v1/items"):
                self.metrics.intake.labels(scope["method"], str(status or 500)).inc()
            if scope["type"] == "http" and path not in ("/v1/stream", "/healthz", "/metrics"):
                access_log.info(
                    "%s %s %s",
                    scope["method"],
                    path,
                    status,
                    extra={
                        "method": scope["method"],
                        "path": path,
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "principal": scope.get("ticker.principal"),
                    },
                )
            request_id.reset(token)

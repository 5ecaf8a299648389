"""JSON error bodies: every 4xx/5xx names what went wrong, never a traceback."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from ticker.exceptions import ClientError, UnavailableError

__all__ = ["error_body", "exception_handlers"]

log = logging.getLogger("ticker.errors")


def error_body(code: str, message: str, field: str | None = None) -> dict[str, object]:
    return {"error": {"code": code, "field": field, "message": message}}


async def client_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ClientError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(error_body(exc.code, exc.message, exc.field), exc.status, headers)


async def unavailable(request: Request, exc: Exception) -> Response:
    log.warning("unavailable: %s %s: %r", request.method, request.url.path, exc)
    retry = getattr(exc, "retry_after", UnavailableError.retry_after)
    return JSONResponse(
        error_body("unavailable", "the service is briefly unavailable; retry"),
        503,
        {"Retry-After": str(retry)},
    )


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, exc.headers)


async def client_gone(request: Request, exc: Exception) -> Response:
    # The client hung up mid-request (while sending its body): nobody to answer,
    # and nothing broke, so no error log and no traceback.
    log.info("client went away: %s %s", request.method, request.url.path)
    return Response(status_code=400)


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal", "internal error"), 500)


exception_handlers = {
    ClientError: client_error,
    ClientDisconnect: client_gone,
    UnavailableError: unavailable,
    RedisError: unavailable,
    TimeoutError: unavailable,
    HTTPException: http_error,
    Exception: server_error,
}

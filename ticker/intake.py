"""The intake API: editors post items; workers do the rest."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from arq.connections import ArqRedis
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ticker.auth import ApiKey
from ticker.constants import IDEMPOTENCY_TTL, Keys
from ticker.exceptions import ClientError, ConflictError, NotFoundError
from ticker.schema import validate_item
from ticker.store import lua

__all__ = ["JOB_INGEST", "now_iso", "read_json", "routes"]

JOB_INGEST = "ingest_item"
_IDEM = re.compile(r"^[\x21-\x7e]{1,200}$")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request body as JSON, refusing wrong types, oversize bodies and bad JSON."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ClientError(
            "Content-Type must be application/json",
            "Content-Type",
            status=415,
            code="unsupported_media_type",
        )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise ClientError(f"body exceeds {max_bytes} bytes", "body", status=413, code="too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise ClientError(
                f"body exceeds {max_bytes} bytes", "body", status=413, code="too_large"
            )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ClientError(
            f"body is not valid JSON: {exc.msg}", "body", code="invalid_json"
        ) from None


def authenticate(request: Request) -> ApiKey:
    key: ApiKey = request.state.keyring.authenticate(request.headers.get("authorization"))
    request.scope.setdefault("ticker.principal", key.name)  # for logs: the name, never the key
    return key


def status_url(item_id: str) -> str:
    return f"/v1/items/{item_id}"


async def create_item(request: Request) -> Response:
    state = request.state
    settings, keys = state.settings, state.keys
    key = authenticate(request)
    key.require("publish")
    data = validate_item(await read_json(request, settings.max_body_bytes), settings.editions)
    key.require("publish", data["edition"])
    if data.get("force"):
        key.require("admin")  # overriding the duplicate check is an editor-in-chief call

    idem = request.headers.get("idempotency-key")
    if idem is not None and not _IDEM.match(idem):
        raise ClientError(
            "Idempotency-Key must be 1-200 printable ASCII characters", "Idempotency-Key"
        )
    body_hash = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
    item_id = uuid.uuid4().hex
    answer = {"id": item_id, "status": "queued", "status_url": status_url(item_id)}
    created = now_iso()
    history = {"at": created, "by": key.name, "action": "submitted", "version": 1}
    prev = await state.redis.eval(
        lua("intake"),
        3,
        keys.idempotency(key.name, idem) if idem else "",
        keys.item(item_id),
        keys.history(item_id),
        body_hash,
        orjson.dumps(answer),
        IDEMPOTENCY_TTL,
        orjson.dumps(data),
        key.name,
        created,
        orjson.dumps(history),
    )
    if prev:
        first_hash, _, first_answer = prev.partition(b"\n")
        if first_hash.decode() != body_hash:
            raise ConflictError("Idempotency-Key was used with another body", "Idempotency-Key")
        answer = orjson.loads(first_answer)
        item_id = answer["id"]
    # Enqueue also on a replay: arq ignores a job id it already has, and this
    # heals a first attempt that stored the item but failed before enqueueing.
    await enqueue_ingest(state.arq, keys, item_id)
    return JSONResponse(answer, 202, {"Location": answer["status_url"]})


async def enqueue_ingest(
    arq: ArqRedis, keys: Keys, item_id: str, defer_until: datetime | None = None
) -> None:
    await arq.enqueue_job(
        JOB_INGEST,
        item_id,
        _job_id=f"ingest:{item_id}",
        _queue_name=keys.queue,
        _defer_until=defer_until,
    )


def item_view(item_id: str, raw: dict[bytes, bytes]) -> dict[str, Any]:
    """The editor's view of an item: its status, current version and event id."""

    def get(name: str) -> str | None:
        v = raw.get(name.encode())
        return v.decode() if v is not None else None

    doc = raw.get(b"item") or raw.get(b"submitted") or b"{}"
    return {
        "id": item_id,
        "status": get("status"),
        "version": int(get("version") or 1),
        "item": orjson.loads(doc),
        "event_id": get("event_id"),
        "duplicate_of": get("duplicate_of"),
        "reason": get("reason"),
        "status_url": status_url(item_id),
    }


async def load_item(request: Request, item_id: str) -> dict[bytes, bytes]:
    if not re.fullmatch(r"[0-9a-f]{32}", item_id):
        raise NotFoundError(f"no item {item_id!r}", "id")
    raw: dict[bytes, bytes] = await request.state.redis.hgetall(request.state.keys.item(item_id))
    if not raw:
        raise NotFoundError(f"no item {item_id!r}", "id")
    return raw


async def get_item(request: Request) -> Response:
    authenticate(request)
    item_id = request.path_params["item_id"]
    return JSONResponse(item_view(item_id, await load_item(request, item_id)))


routes = [
    Route("/v1/items", create_item, methods=["POST"]),
    Route("/v1/items/{item_id}", get_item, methods=["GET"]),
]

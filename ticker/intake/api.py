"""The intake API: editors post items; workers do the rest."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ticker import lua
from ticker.constants import IDEMPOTENCY_TTL, ITEMS_INDEX_MAX
from ticker.exceptions import AuthError, ClientError, ConflictError, NotFoundError, ValidationError
from ticker.intake.accept import accept_change
from ticker.intake.auth import ApiKey, require_readable
from ticker.intake.deskfeed import note_status
from ticker.intake.itemview import extra_view
from ticker.intake.prefer import decided, parse_wait, waited_answer
from ticker.intake.schema import parse_time, validate_item
from ticker.jobs import enqueue_change, enqueue_ingest
from ticker.redis_conn import confirm_replicated

__all__ = ["now_iso", "read_json", "routes"]

_IDEM = re.compile(r"^[\x21-\x7e]{1,200}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


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
    # A body trickled in byte by byte would hold the request open for ever.
    seconds = request.state.settings.body_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_bytes:
                    raise ClientError(
                        f"body exceeds {max_bytes} bytes", "body", status=413, code="too_large"
                    )
    except TimeoutError:
        raise ClientError(
            f"body not received within {seconds:g} s", "body", status=408, code="timeout"
        ) from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ClientError(
            f"body is not valid JSON: {exc.msg}", "body", code="invalid_json"
        ) from None


def authenticate(request: Request) -> ApiKey:
    # An editor signed in to the console (ticker.desk.auth): no key, a session cookie.
    desk: ApiKey | None = request.scope.get("ticker.desk_principal")
    if desk is not None and "authorization" not in request.headers:
        request.scope.setdefault("ticker.principal", desk.name)
        return desk
    if (ended := request.scope.get("ticker.desk_error")) and "authorization" not in request.headers:
        raise AuthError(ended, "session")
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
    embargo = embargo_of(data)
    status = "embargoed" if embargo else "queued"
    answer = {"id": item_id, "status": status, "status_url": status_url(item_id)}
    created = now_iso()
    history = {"at": created, "by": key.name, "action": "submitted", "version": 1}
    prev = await lua.run(
        state.redis,
        "intake",
        4,
        keys.idempotency(key.name, idem) if idem else keys.none,
        keys.item(item_id),
        keys.history(item_id),
        keys.items_index,
        body_hash,
        orjson.dumps(answer),
        IDEMPOTENCY_TTL if idem else 0,
        orjson.dumps(data),
        key.name,
        created,
        orjson.dumps(history),
        status,
        item_id,
        int(time.time() * 1000),
        ITEMS_INDEX_MAX,
    )
    if prev:
        first_hash, _, first_answer = prev.partition(b"\n")
        if first_hash.decode() != body_hash:
            raise ConflictError("Idempotency-Key was used with another body", "Idempotency-Key")
        answer = orjson.loads(first_answer)
        item_id = answer["id"]
        embargo = embargo_of(data)
    # Enqueue also on a replay: arq ignores a job id it already has, and this
    # heals a first attempt that stored the item but failed before enqueueing.
    if not prev:
        await note_status(state.redis, keys, item_id, by=key.name)
    await enqueue_ingest(state.arq, keys, item_id, defer_until=embargo)
    await _replicated(state)
    if (wait := parse_wait(request.headers.get("prefer"))) is not None:
        return await waited_answer(request, item_id, decided, wait)
    return JSONResponse(answer, 202, {"Location": answer["status_url"]})


async def _replicated(state: Any) -> None:
    """With TICKER_REDIS_WAIT_REPLICAS, acknowledge only what replicas hold (else 503)."""
    s = state.settings
    await confirm_replicated(
        state.redis, state.arq, state.keys, s.redis_wait_replicas, s.redis_wait_timeout_ms
    )


def embargo_of(data: dict[str, Any]) -> datetime | None:
    """The embargo time if it is still in the future."""
    if not data.get("embargoed_until"):
        return None
    until = parse_time(data["embargoed_until"], "embargoed_until")
    return until if until > datetime.now(UTC) else None


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
        "published_version": int(get("published_version") or 0),
        "item": orjson.loads(doc),
        "event_id": get("event_id"),
        "duplicate_of": get("duplicate_of"),
        # Why a held item is held: {score, reason, shared, differing} (docs/story-matching.md).
        "match": orjson.loads(raw[b"match"]) if b"match" in raw else None,
        "reason": get("reason"),
        "status_url": status_url(item_id),
        **extra_view(raw),
    }


async def load_item(request: Request, item_id: str) -> dict[bytes, bytes]:
    if not re.fullmatch(r"[0-9a-f]{32}", item_id):
        raise NotFoundError(f"no item {item_id!r}", "id")
    raw: dict[bytes, bytes] = await request.state.redis.hgetall(request.state.keys.item(item_id))
    if not raw:
        raise NotFoundError(f"no item {item_id!r}", "id")
    return raw


def edition_of(raw: dict[bytes, bytes]) -> str | None:
    """The edition of a stored item (published or only submitted)."""
    doc = raw.get(b"item") or raw.get(b"submitted")
    edition = orjson.loads(doc).get("edition") if doc else None
    return edition if isinstance(edition, str) else None


async def load_readable(request: Request, key: ApiKey, item_id: str) -> dict[bytes, bytes]:
    """``load_item``, as a 404 too when the key may not read the item's edition."""
    raw = await load_item(request, item_id)
    require_readable(key, edition_of(raw), item_id)
    return raw


async def get_item(request: Request) -> Response:
    key = authenticate(request)
    item_id = request.path_params["item_id"]
    return JSONResponse(item_view(item_id, await load_readable(request, key, item_id)))


def _edition_check(key: ApiKey, scope: str) -> Any:
    def check(raw: dict[bytes, bytes]) -> None:
        doc = orjson.loads(raw.get(b"item") or raw[b"submitted"])
        key.require(scope, doc["edition"])

    return check


async def _after_change(request: Request, item_id: str, accepted: Any) -> Response:
    state = request.state
    if accepted.cancelled:
        pass
    elif accepted.draft is not None:
        # An unpublished draft: its (new) embargo decides when it goes out.
        await enqueue_ingest(
            state.arq, state.keys, item_id, rev=accepted.rev, defer_until=embargo_of(accepted.draft)
        )
    else:
        await enqueue_change(state.arq, state.keys, item_id, accepted.version)
    await _replicated(state)
    await note_status(state.redis, state.keys, item_id, by=request.scope.get("ticker.principal"))
    if (wait := parse_wait(request.headers.get("prefer"))) is not None:
        version = accepted.version

        def applied(view: dict[str, Any]) -> bool:
            if accepted.cancelled or view["status"] != "published":
                return accepted.draft is None or decided(view)
            return bool(view["published_version"] >= version)

        return await waited_answer(request, item_id, applied, wait)
    raw = await load_item(request, item_id)
    view = item_view(item_id, raw)
    return JSONResponse(view, 202, {"Location": status_url(item_id)})


async def _change_request(request: Request, scope: str) -> tuple[ApiKey, str]:
    """The caller's key (with ``scope``) and the id of an existing item it may read (an item
    of an edition the key is not for is a 404, as for reads: no answer tells it exists)."""
    key = authenticate(request)
    key.require(scope)
    item_id = request.path_params["item_id"]
    await load_readable(request, key, item_id)
    return key, item_id


async def correct_item(request: Request) -> Response:
    """A correction: a new version of the item, and an `item.updated` event."""
    state = request.state
    key, item_id = await _change_request(request, "correct")
    patch = validate_item(
        await read_json(request, state.settings.max_body_bytes),
        state.settings.editions,
        partial=True,
    )
    if patch.pop("force", None):
        key.require("admin")
    accepted = await accept_change(
        state.redis,
        state.keys,
        item_id,
        kind="update",
        by=key.name,
        at=now_iso(),
        patch=patch,
        check=_edition_check(key, "correct"),
    )
    return await _after_change(request, item_id, accepted)


async def retract_item(request: Request) -> Response:
    """A retraction (kill): every screen drops the item; it needs a reason."""
    state = request.state
    key, item_id = await _change_request(request, "retract")
    reason = request.query_params.get("reason")
    if reason is None and request.headers.get("content-type"):
        body = await read_json(request, state.settings.max_body_bytes)
        if not isinstance(body, dict) or set(body) - {"reason"}:
            raise ValidationError("the body may only hold reason", "reason")
        reason = body.get("reason")
    if (
        not isinstance(reason, str)
        or not 1 <= len(reason.strip()) <= 500
        or _CONTROL.search(reason)
    ):
        raise ValidationError("reason is required: 1-500 characters of plain text", "reason")
    accepted = await accept_change(
        state.redis,
        state.keys,
        item_id,
        kind="retract",
        by=key.name,
        at=now_iso(),
        reason=reason.strip(),
        check=_edition_check(key, "retract"),
    )
    return await _after_change(request, item_id, accepted)


async def item_history(request: Request) -> Response:
    """The audit trail: who did what to the item, and when."""
    key = authenticate(request)
    item_id = request.path_params["item_id"]
    await load_readable(request, key, item_id)
    entries = await request.state.redis.lrange(request.state.keys.history(item_id), 0, -1)
    return JSONResponse({"id": item_id, "history": [orjson.loads(e) for e in entries]})


routes = [
    Route("/v1/items", create_item, methods=["POST"]),
    Route("/v1/items/{item_id}", get_item, methods=["GET"]),
    Route("/v1/items/{item_id}", correct_item, methods=["PATCH"]),
    Route("/v1/items/{item_id}", retract_item, methods=["DELETE"]),
    Route("/v1/items/{item_id}/history", item_history, methods=["GET"]),
]

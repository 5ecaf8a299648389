"""Opening a client session: snapshot-then-live, or resume from a last id.

Shared by the SSE and WebSocket transports. The client is attached to the hub
before anything is read, and everything the first frames cover is skipped in
its buffer, so there is no gap and no duplicate between the two.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ticker.disconnect import Disconnect
from ticker.events import Event, event_id, parse_event_id, reset_event
from ticker.exceptions import UnavailableError, ValidationError
from ticker.filters import Filter
from ticker.metrics import Metrics
from ticker.stream.hub import Client, Hub
from ticker.stream.reads import Store

__all__ = ["close_session", "open_fresh", "open_session", "parse_last_id", "track"]


def track(metrics: Metrics | None, transport: str, f: Filter) -> Callable[[Client | None], None]:
    """Count an open connection; call the result once it has closed, with its
    client (if it got one) to count why the server cut it, if it did."""
    if metrics is None:
        return _nothing
    gauge = metrics.child(metrics.connections, transport, ",".join(sorted(f.editions)) or "all")
    gauge.inc()

    def release(client: Client | None) -> None:
        gauge.dec()
        reason = client.closed if client is not None else None
        if reason is not None and (label := reason.rule.label) is not None:  # the server cut it
            metrics.dropped.labels(transport, label).inc()

    return release


def _nothing(client: Client | None) -> None:
    pass


def close_session(hub: Hub, client: Client | None, count: Callable[[Client | None], None]) -> None:
    """A stream's connection has ended: out of the hub, and counted (``track``)."""
    if client is not None:
        client.cut(Disconnect.GONE)
        hub.detach(client)
    count(client)


def parse_last_id(value: str | None, field: str) -> str | None:
    """Validate a client's last event id ("ms-seq.epoch", or a plain "ms-seq" from
    before epochs); None or "" means none."""
    if value is None or not value.strip():
        return None
    try:
        (ms, seq), epoch = parse_event_id(value)
    except ValueError:
        raise ValidationError(
            f"{field} must be an event id like 1700000000000-0.3f9a0c1e", field, status=400
        ) from None
    return event_id(f"{ms}-{seq}", epoch)


def open_fresh(
    hub: Hub,
    filter: Filter,
    *,
    transport: str,
    limit: int,
    on_cut: Callable[[Client], None] | None = None,
) -> tuple[Client, Event]:
    """Attach a new client (no last id); return it with its snapshot."""
    client = Client(filter, limit, transport, on_cut)
    # No await between the snapshot and attach: the hub's state at this
    # instant is what the snapshot shows, and every later event is queued.
    snap = hub.snapshot(filter)
    hub.attach(client)
    return client, snap


async def open_session(
    hub: Hub,
    store: Store,
    filter: Filter,
    last_id: str | None,
    *,
    transport: str,
    limit: int,
    on_cut: Callable[[Client], None] | None = None,
    ready_timeout: float = 5.0,
    metrics: Metrics | None = None,
) -> tuple[Client, list[Event]]:
    """Attach a client; return it with the events to send before its live ones."""
    if not hub.ready.is_set():
        try:
            await asyncio.wait_for(hub.ready.wait(), ready_timeout)
        except TimeoutError:
            raise UnavailableError("the ticker is not ready (Redis unreachable)") from None
    if last_id is None:
        client, snap = open_fresh(hub, filter, transport=transport, limit=limit, on_cut=on_cut)
        return client, [snap]
    client = Client(filter, limit, transport, on_cut)
    key, epoch = parse_event_id(last_id)
    # Taken with the attach, before any await: the hub's events up to now, and the
    # later ones go to the client's buffer; Redis only rules on retention.
    hub.attach(client)
    attached_at = hub.last_key
    if epoch and epoch != hub.epoch:
        # An id from another history (Redis lost its data): never resumed from this one.
        return client, _reset(hub, client, filter, metrics, "your last id is from another epoch")
    plain = f"{key[0]}-{key[1]}"
    remembered = hub.replay(filter, key)
    try:
        resume = await (
            store.resume(plain, hub.epoch) if remembered is None else store.check(plain, hub.epoch)
        )
    except Exception:
        hub.detach(client)
        raise
    if resume.reset:
        return client, _reset(hub, client, filter, metrics, "events after your last id are gone")
    if remembered is not None:
        # A client ahead of this hub (it came from a node further on) skips what it has.
        client.after = key if key > attached_at else None
        return client, remembered
    missed = [e for e in resume.events if e.matches(filter)]
    client.after = parse_event_id(resume.last_id)[0]
    return client, missed


def _reset(
    hub: Hub, client: Client, filter: Filter, metrics: Metrics | None, reason: str
) -> list[Event]:
    """A reset and the hub's snapshot for a client that cannot resume."""
    if metrics is not None:
        metrics.resets.labels("client").inc()
    snap = hub.snapshot(filter)
    client.after = snap.key
    return [reset_event(snap.id, reason), snap]

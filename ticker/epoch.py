"""The data's epoch: which history an event id belongs to.

Redis is the source of truth, but a Redis run without persistence that restarts, or a
failover to a replica that had nothing, comes back empty, and the stream's ids (times
in milliseconds) carry on growing as if nothing had happened. So the first write to an
empty Redis (the publish step's first event, or a node's first snapshot) stores a new
random epoch under ``{ticker}:epoch``, atomically with what it writes (SET only if
absent, so every writer agrees on the first). Every event id clients see is the stream
id and the epoch: ``1700000000000-0.3f9a0c1e`` (Centrifugo's offset and epoch, in one
string, so an EventSource hands it back as ``Last-Event-ID``). A node whose epoch no
longer matches Redis's (checked on every catch-up and every resubscription) reloads
and resets its clients; a client resuming from another epoch gets a reset and a fresh
snapshot, never events from another history. A plain stream id (from before epochs)
is taken as the current epoch.
"""

from __future__ import annotations

import secrets

__all__ = ["new_epoch"]


def new_epoch() -> str:
    """A fresh epoch: 8 hex characters (a collision needs a wipe to draw the same one)."""
    return secrets.token_hex(4)

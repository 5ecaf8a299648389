"""The direct write path to a connection's transport, probed from uvicorn's ASGI
``send``.

Under uvicorn, once a client is caught up, the hub writes an event's bytes
straight to each client's transport (a non-blocking, buffered write) instead
of waking one task per client. A client whose transport buffer grows past its
bound is cut. Other ASGI servers keep the generic path (a task per client).
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["DirectTransport", "chunked_of", "transport_of"]


class DirectTransport(Protocol):
    def write(self, data: bytes) -> None: ...
    def is_closing(self) -> bool: ...
    def get_write_buffer_size(self) -> int: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


def transport_of(send: Any) -> DirectTransport | None:
    """The transport behind uvicorn's ASGI ``send`` (a bound method of its
    protocol or request cycle); None for other servers."""
    owner = getattr(send, "__self__", None)
    transport = getattr(owner, "transport", None)
    if transport is None:
        return None
    kind = type(transport)
    if kind not in _DIRECT_KINDS:
        # Duck-typed: uvloop's transports do not derive from asyncio.BaseTransport.
        if not all(callable(getattr(transport, m, None)) for m in _METHODS):
            return None
        _DIRECT_KINDS.add(kind)
    return transport  # type: ignore[no-any-return]


_METHODS = ("write", "is_closing", "get_write_buffer_size", "close", "abort")
_DIRECT_KINDS: set[type] = set()  # transport classes seen to have them all


def chunked_of(send: Any) -> bool | None:
    """Whether uvicorn chose chunked encoding for this response (None: unknown)."""
    value = getattr(getattr(send, "__self__", None), "chunked_encoding", None)
    return value if isinstance(value, bool) else None

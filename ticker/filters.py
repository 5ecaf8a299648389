"""Stream filters (pure): which events a client wants, parsed from query parameters."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from ticker.exceptions import ValidationError

__all__ = ["Filter", "Subject", "stream_query"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_MAX_VALUES = 20


@dataclass(frozen=True, slots=True)
class Subject:
    """The attributes of an item that filters look at."""

    edition: str
    categories: frozenset[str]
    regions: frozenset[str]
    urgency: int

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> Subject:
        return cls(
            str(item.get("edition", "")),
            frozenset(item.get("categories") or ()),
            frozenset(item.get("regions") or ()),
            int(item.get("urgency") or 9),
        )


@dataclass(frozen=True, slots=True)
class Filter:
    """A client's filter. Empty sets match everything; values within a set are ORed."""

    editions: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    max_urgency: int = 9

    def matches(self, s: Subject) -> bool:
        return (
            s.urgency <= self.max_urgency
            and (not self.editions or s.edition in self.editions)
            and (not self.categories or not self.categories.isdisjoint(s.categories))
            and (not self.regions or not self.regions.isdisjoint(s.regions))
        )

    @classmethod
    def parse(cls, params: Mapping[str, Sequence[str]], editions: Iterable[str]) -> Filter:
        """Build from multi-valued query parameters; values may also be comma separated."""
        configured = tuple(editions)  # listed in the configured order, as the intake does
        known = set(configured)

        def values(name: str) -> frozenset[str]:
            out = {v.strip() for raw in params.get(name, ()) for v in raw.split(",") if v.strip()}
            if len(out) > _MAX_VALUES:
                raise ValidationError(
                    f"{name} takes at most {_MAX_VALUES} values", name, status=400
                )
            return frozenset(out)

        eds = values("edition")
        if unknown := eds - known:
            raise ValidationError(
                f"edition {sorted(unknown)[0]!r} is not one of {', '.join(configured)}",
                "edition",
                status=400,
            )
        cats, regs = values("category"), values("region")
        for name, group in (("category", cats), ("region", regs)):
            for v in group:
                if not _SLUG.match(v):
                    raise ValidationError(f"{name} {v!r} is not a valid slug", name, status=400)
        max_urgency = 9
        raw = [v for v in params.get("max_urgency", ()) if v.strip()]
        if raw:
            try:
                max_urgency = int(raw[-1])
            except ValueError:
                max_urgency = 0
            if not 1 <= max_urgency <= 9:
                raise ValidationError(
                    "max_urgency must be an integer 1-9", "max_urgency", status=400
                )
        return cls(eds, cats, regs, max_urgency)


_BY_QUERY: dict[tuple[bytes, tuple[str, ...]], tuple[Filter, str | None]] = {}
_BY_QUERY_MAX = 1024
_KEPT_QUERY_MAX = 512  # bytes


def stream_query(query: bytes, editions: tuple[str, ...]) -> tuple[Filter, str | None]:
    """The filter and the ``last_event_id`` (unvalidated) in a stream request's raw
    query string, parsed as Starlette's ``QueryParams`` would (the last value wins).

    Most clients of a site send the same query: the same one gets the same Filter
    object, so a connect skips the parse and the hub's clients share one filter.
    Kept: short queries that parse and carry no ``last_event_id`` (one client's
    resume point is no shared filter, and a long query would hold memory).
    """
    key = (query, editions)
    parsed = _BY_QUERY.get(key)
    if parsed is None:
        params: dict[str, list[str]] = {}
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            params.setdefault(name, []).append(value)
        last = params.get("last_event_id")
        parsed = (Filter.parse(params, editions), last[-1] if last else None)
        if last is None and len(query) <= _KEPT_QUERY_MAX:
            if len(_BY_QUERY) >= _BY_QUERY_MAX:
                _BY_QUERY.clear()
            _BY_QUERY[key] = parsed
    return parsed

"""Input edges from the hostile-client probe (issue 21): extreme dates, control characters in
``url``, folded separators in every plain-text field, and no 5xx from any item body."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from schemathesis.generation.jsonschema.builder import build

from tests.support.background import BackgroundStack
from tests.support.helpers import wait_for
from tests.support.stack import Stack, auth, fresh_settings
from ticker.embedded_redis import RedisProcess
from ticker.intake.schema import item_schema

EDITIONS = ("en", "ar", "es")


def from_schema(schema: dict[str, Any]) -> SearchStrategy[Any]:
    """Values a JSON Schema (2020-12) admits. hypothesis-jsonschema 0.23 breaks on the
    Hypothesis installed here (private internals it uses are gone), so this uses the
    generator schemathesis (already a test dependency) builds its bodies with."""
    return build(schema, draft=20, formats={})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("embargoed_until", "0001-01-01T00:00:00+14:00"),
        ("expires_at", "9999-12-31T23:59:59-23:59"),
        ("expires_at", "0001-01-01T00:00:00Z"),
        ("embargoed_until", "9999-12-31T23:59:59Z"),
    ],
)
async def test_out_of_range_dates_are_a_422_naming_the_field(
    stack: Stack, field: str, value: str
) -> None:
    """A date-time that overflows (or leaves no room) in UTC is refused with 422 naming it."""
    r = await stack.post({"headline": "Dates at the edge", "edition": "en", field: value})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert await stack.events() == []


@pytest.mark.parametrize("bad", ["\x00", "\x1b", "\x7f", "\x85", "\x01"])
async def test_control_characters_in_url_are_refused(stack: Stack, bad: str) -> None:
    """NUL, ESC, DEL and other C0/C1 controls inside ``url`` get a 422 naming ``url``."""
    body = {"headline": "A link", "edition": "en", "url": f"https://example.com/a{bad}b"}
    r = await stack.post(body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "url"
    ok = await stack.post({**body, "url": "https://example.com/ab"})
    assert ok.status_code == 202, ok.text


async def test_line_and_paragraph_separators_fold_in_every_text_field(stack: Stack) -> None:
    """U+2028/U+2029 (and other whitespace runs) fold to one space in byline, source, tags
    and the correction note, as in the headline."""
    item = await stack.publish(
        "Separators\u2029folded",
        byline="Jane\u2029Doe",
        source="Desk\u2028One",
        tags=["a\u2029b"],
    )
    doc = item["item"]
    assert (doc["headline"], doc["byline"], doc["source"], doc["tags"]) == (
        "Separators folded",
        "Jane Doe",
        "Desk One",
        ["a b"],
    )
    patch = {"byline": "New\u2028\u2029 Name", "correction_note": "Fixed\u2029name"}
    r = await stack.http.patch(f"/v1/items/{item['id']}", json=patch, headers=auth())
    assert r.status_code == 202, r.text
    view = await stack.wait_status(item["id"], "published")

    async def corrected() -> bool:
        nonlocal view
        view = (await stack.http.get(f"/v1/items/{item['id']}", headers=auth())).json()
        return view["published_version"] == 2

    await wait_for(corrected, 10, what="the correction to publish")
    assert view["item"]["byline"] == "New Name"
    assert view["item"]["correction_note"] == "Fixed name"


# -- no 5xx from any body: a property over the whole item schema ---------------------------


@pytest.fixture(scope="module")
def live(redis_server: RedisProcess) -> Iterator[tuple[BackgroundStack, Stack, str]]:
    cfg = fresh_settings(redis_server.url, editions=EDITIONS)
    runner = BackgroundStack(cfg)
    with runner as stack:

        async def first() -> str:
            r = await stack.post({"headline": "Target of patches", "edition": "en"})
            assert r.status_code == 202, r.text
            return str(r.json()["id"])

        yield runner, stack, runner.run(first())


# Date-times anywhere in the representable range, with any offset up to a day.
OFFSETS = st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
DATES = st.builds(
    lambda d, tz: d.replace(tzinfo=tz).isoformat(),
    st.datetimes(min_value=datetime.min, max_value=datetime.max),
    OFFSETS,
) | st.sampled_from(
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-23:59", "2026-01-01T00:00:00Z"]
)
DATE_FIELDS = st.dictionaries(st.sampled_from(["expires_at", "embargoed_until"]), DATES)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def bodies(partial: bool) -> SearchStrategy[Any]:
    """Valid bodies (some with real date-times), valid bodies with one field broken, and
    arbitrary JSON."""
    valid = st.builds(
        lambda b, d: {**b, **d}, from_schema(item_schema(EDITIONS, partial)), DATE_FIELDS
    )
    broken = st.builds(
        lambda b, k, v: {**b, k: v},
        from_schema(item_schema(EDITIONS, partial)),
        st.sampled_from(sorted(item_schema(EDITIONS, partial)["properties"])),
        JSON,
    )
    return valid | broken | JSON


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=bodies(partial=False), patch=bodies(partial=True))
@pytest.mark.timeout(120)
def test_no_item_body_gets_a_5xx(
    live: tuple[BackgroundStack, Stack, str], body: Any, patch: Any
) -> None:
    """Any POST or PATCH body, valid against the item schema (with date-times anywhere in the
    representable range) or broken in one field, is answered 2xx or 4xx, never 5xx."""
    runner, stack, item_id = live

    async def send() -> tuple[int, int]:
        headers = auth("admin")
        posted = await stack.http.post("/v1/items", json=body, headers=headers)
        patched = await stack.http.patch(f"/v1/items/{item_id}", json=patch, headers=headers)
        return posted.status_code, patched.status_code

    posted, patched = runner.run(send())
    assert 200 <= posted < 500, (posted, body)
    assert 200 <= patched < 500, (patched, patch)

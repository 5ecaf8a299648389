"""The demo afternoon: valid items, each edition in its own script, places and regions that
match, no two items the dedupe would take for one story, and a newsroom's rhythm."""

from __future__ import annotations

import asyncio
import re
from itertools import combinations
from typing import Any

import httpx
import pytest

from tests.support.helpers import wait_for
from tests.support.stack import Stack, auth
from ticker import demo
from ticker.intake.schema import validate_item
from workers.matching import compare
from workers.normalise import dedupe_key, language_of
from workers.storyfacts import extract


def is_near_duplicate(a: str, b: str, lang: str) -> bool:
    """Whether the worker's matcher takes the two headlines for one story."""
    return compare(extract(a, lang), extract(b, lang)).same


REGIONS = {"mena", "africa", "europe", "asia-pacific", "latam", "us-canada"}
LATIN = re.compile(r"[A-Za-z]")
ARABIC = re.compile(r"[\u0600-\u06ff]")
DESKS = demo.load_desks()
PLACES = demo.load_places()


def headlines(entries: list[dict[str, Any]]) -> list[str]:
    """Every headline a desk puts out, corrected versions included."""
    out = [e["headline"] for e in entries]
    return out + [e["correct"]["headline"] for e in entries if "correct" in e]


@pytest.mark.parametrize("edition", demo.EDITIONS)
def test_items_are_valid_posts_and_corrections(edition: str) -> None:
    """Every post, correction and retraction body passes the API's own validation."""
    for step in demo.timeline({edition: DESKS[edition]}):
        if step.action == "post":
            validate_item(step.body, demo.EDITIONS)
        elif step.action == "correct":
            validate_item(step.body, demo.EDITIONS, partial=True)
        else:
            assert step.body["reason"].strip()


@pytest.mark.parametrize("edition", demo.EDITIONS)
def test_text_is_in_the_editions_script(edition: str) -> None:
    """Arabic items carry no Latin letters; English and Spanish ones no Arabic letters."""
    for entry in DESKS[edition]:
        texts = [entry["headline"], *entry.get("correct", {}).values()]
        texts += entry.get("retract", {}).values()
        for text in (t for t in texts if isinstance(t, str)):
            wrong = LATIN if edition == "ar" else ARABIC
            assert not wrong.search(text), text


@pytest.mark.parametrize("edition", demo.EDITIONS)
def test_places_are_named_in_the_edition_and_regions_match(edition: str) -> None:
    """Each place is spelled as the edition spells it and its regions are on the item."""
    for entry in DESKS[edition]:
        assert set(entry["regions"]) <= REGIONS, entry["headline"]
        for key in entry["places"]:
            place = PLACES[key]
            assert place[edition] in entry["headline"], (place[edition], entry["headline"])
            assert set(place["regions"]) <= set(entry["regions"]), entry["headline"]
    assert set(PLACES["khartoum"]["regions"]) == {"mena", "africa"}
    assert PLACES["madrid"]["regions"] == ["europe"]


@pytest.mark.parametrize("edition", demo.EDITIONS)
def test_no_two_items_are_one_story_to_the_dedupe(edition: str) -> None:
    """No two of a desk's headlines share a dedupe key or match as near-duplicates."""
    lang = language_of(edition)
    entries = DESKS[edition]
    keys = [dedupe_key(h, edition) for h in (e["headline"] for e in entries)]
    assert len(set(keys)) == len(keys)
    for a, b in combinations([e["headline"] for e in entries], 2):
        assert not is_near_duplicate(a, b, lang), (a, b)
    # A correction is not another item's story either.
    for entry in (e for e in entries if "correct" in e):
        for other in headlines(entries):
            if other not in (entry["headline"], entry["correct"]["headline"]):
                assert not is_near_duplicate(entry["correct"]["headline"], other, lang)


def test_the_afternoon_has_a_newsrooms_rhythm() -> None:
    """Bursts and lulls, a flash, a pinned item, a correction and a retraction in each edition."""
    steps = demo.timeline(DESKS)
    assert [s.at for s in steps] == sorted(s.at for s in steps)
    for edition, entries in DESKS.items():
        gaps = [float(e["after"]) for e in entries[1:]]
        assert min(gaps) <= 0.3 and max(gaps) >= 1.5, edition  # bursts and lulls
        assert any(e["urgency"] == 1 for e in entries), edition
        assert any(e.get("pinned") for e in entries), edition
        mine = [s for s in steps if s.key.startswith(edition + "-")]
        posted = {s.key: s.at for s in mine if s.action == "post"}
        fixes = [s for s in mine if s.action in ("correct", "retract")]
        assert {s.action for s in fixes} == {"correct", "retract"}, edition
        assert all(s.at > posted[s.key] for s in fixes)


async def test_every_demo_item_is_published_by_the_real_worker(stack: Stack) -> None:
    """Posted through the API, every demo item is published: none is held or dropped."""
    posts = [s for s in demo.timeline(DESKS) if s.action == "post"]
    ids = []
    async with httpx.AsyncClient(base_url=stack.base, headers=auth(), timeout=10) as http:
        for step in posts:
            r = await http.post("/v1/items", json=step.body)
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
    views = await asyncio.gather(*(stack.wait_status(i, "published") for i in ids))
    assert len(views) == len(posts)


async def test_playing_the_afternoon_corrects_and_retracts(stack: Stack) -> None:
    """Played against the real service, the demo's corrections and retractions land on the
    items they name."""
    en = {"en": DESKS["en"]}
    steps = demo.timeline(en)

    def run() -> dict[str, str]:
        with httpx.Client(base_url=stack.base, headers=auth(), timeout=10) as client:
            return demo.play(client, steps, 0.4)

    ids = await asyncio.to_thread(run)
    assert len(ids) == len(DESKS["en"])
    async with httpx.AsyncClient(base_url=stack.base, headers=auth(), timeout=10) as http:
        for step in (s for s in steps if s.action != "post"):
            if step.action == "retract":
                await stack.wait_status(ids[step.key], "retracted")
            else:
                url = f"/v1/items/{ids[step.key]}"
                note = step.body["correction_note"]

                async def corrected(url: str = url, note: str = note) -> bool:
                    view = (await http.get(url)).json()
                    return bool(view["item"].get("correction_note") == note)

                await wait_for(corrected, 10, what="the demo correction")

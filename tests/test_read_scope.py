"""Edition limits cover reads: a key limited to some editions gets the same 404 for an item
of another edition (and its history) as for an item that does not exist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.stack import Stack, auth
from ticker.exceptions import NotFoundError
from ticker.intake.auth import ApiKey, require_readable

MISSING = "0" * 32


async def _read(stack: Stack, item_id: str, key: str) -> tuple[int, int, dict[str, object]]:
    item = await stack.http.get(f"/v1/items/{item_id}", headers=auth(key))
    history = await stack.http.get(f"/v1/items/{item_id}/history", headers=auth(key))
    return item.status_code, history.status_code, item.json()


async def test_a_key_limited_to_en_cannot_read_other_editions(stack: Stack) -> None:
    """The en-only key reads en items, and gets exactly the not-found answer for an ar item,
    published or embargoed, and for its history."""
    en = await stack.publish("An English item")
    ar = await stack.publish("خبر عربي", edition="ar")
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await stack.post({"headline": "Embargoed", "edition": "ar", "embargoed_until": until})
    assert r.status_code == 202, r.text
    embargoed = r.json()["id"]

    status, history, _ = await _read(stack, en["id"], "en-desk")
    assert (status, history) == (200, 200)
    _, _, missing = await _read(stack, MISSING, "en-desk")
    for item_id in (ar["id"], embargoed):
        status, history, body = await _read(stack, item_id, "en-desk")
        assert (status, history) == (404, 404)
        assert body == {"error": {**missing["error"], "message": f"no item {item_id!r}"}}  # type: ignore[dict-item]
        # An unlimited key still reads it.
        status, history, _ = await _read(stack, item_id, "editor")
        assert (status, history) == (200, 200)


async def test_changes_to_other_editions_answer_as_for_a_missing_item(stack: Stack) -> None:
    """A key limited to en that may correct and retract gets the not-found answer for a
    correction, a retraction or a publish-anyway of an ar item, and the item is untouched."""
    ar = await stack.publish("خبر عربي آخر", edition="ar")
    before = (await stack.http.get(f"/v1/items/{ar['id']}/history", headers=auth())).json()
    attempts = [
        ("PATCH", "/v1/items/{id}", {"headline": "changed"}, "en-fixer"),
        ("DELETE", "/v1/items/{id}", {"reason": "wrong"}, "en-fixer"),
        ("POST", "/v1/items/{id}/publish", None, "en-desk"),
    ]
    for method, path, body, key in attempts:
        missing = await stack.http.request(
            method, path.format(id=MISSING), json=body, headers=auth(key)
        )
        r = await stack.http.request(method, path.format(id=ar["id"]), json=body, headers=auth(key))
        assert (missing.status_code, r.status_code) == (404, 404), (method, r.text)
        assert r.json() == {
            "error": {**missing.json()["error"], "message": f"no item {ar['id']!r}"}
        }
    item = (await stack.http.get(f"/v1/items/{ar['id']}", headers=auth())).json()
    assert (item["status"], item["version"]) == ("published", 1)
    assert item["item"]["headline"] == "خبر عربي آخر"
    after = (await stack.http.get(f"/v1/items/{ar['id']}/history", headers=auth())).json()
    assert after == before


def test_require_readable_is_the_one_check() -> None:
    """``require_readable`` lets unlimited keys and keys of the edition through and raises
    NotFoundError otherwise (the function the items list reuses)."""
    limited = ApiKey("ar", b"", frozenset({"publish"}), frozenset({"ar"}))
    unlimited = ApiKey("all", b"", frozenset({"publish"}))
    require_readable(limited, "ar", "x")
    require_readable(unlimited, "en", "x")
    require_readable(unlimited, None, "x")
    for edition in ("en", None):
        try:
            require_readable(limited, edition, "x")
        except NotFoundError as exc:
            assert exc.status == 404
        else:
            raise AssertionError("a limited key read another edition")

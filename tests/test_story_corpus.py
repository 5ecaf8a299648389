"""The story-matching corpus (tests/data/stories) is well formed and split by story."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from types import ModuleType

STORIES = Path(__file__).resolve().parent / "data" / "stories"


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"story_{name}", STORIES / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_corpus_passes_its_checks() -> None:
    """dev.jsonl and test.jsonl pass every check (schema, kinds, no duplicates, split, counts)."""
    check = _module("check")
    assert check.check(check.load()) == []


def test_corpus_is_what_the_sources_build() -> None:
    """The committed splits are exactly what build.py makes of src/*.txt (no hand edits drift)."""
    built = _module("build").build()
    check = _module("check")
    assert built == check.load()


def test_check_catches_a_story_in_the_wrong_split_and_a_duplicate() -> None:
    """A story moved to the other split, a repeated pair and a bad kind are each reported."""
    check = _module("check")
    splits = copy.deepcopy(check.load())
    moved = splits["dev"][0]
    splits["test"].append({**moved, "id": moved["id"][:3] + "9999"})
    splits["dev"].append({**splits["dev"][1], "id": moved["id"][:3] + "9998"})
    splits["dev"][2]["kind"] = "same:vibes"
    errors = "\n".join(check.check(splits))
    assert f"story {moved['story']} belongs to dev" in errors
    assert "duplicate pair" in errors
    assert "kind 'same:vibes' unknown" in errors

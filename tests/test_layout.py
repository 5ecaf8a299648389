"""The layout's import rules (docs/architecture.md), kept by import-linter."""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_import_rules_hold(monkeypatch) -> None:
    """Every import contract in pyproject.toml holds (only ticker.serve imports uvicorn,
    the client never imports the server, the write and read sides stay apart...)."""
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT))
    assert lint_imports(str(ROOT / "pyproject.toml"), no_cache=True) == 0

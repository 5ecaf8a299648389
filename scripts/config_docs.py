"""Writes docs/configuration.md from the Settings object, so the page cannot drift.

    python -m scripts.config_docs          # rewrite the page
    python -m scripts.config_docs --check  # exit 1 if the page is stale

Each field's documentation is the comment block above it in ticker/config.py;
fields that follow one comment with no blank line share its row.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from ticker.config import Settings

__all__ = ["PAGE", "render"]

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "configuration.md"
SOURCE = ROOT / "ticker" / "config.py"

HEAD = """# Configuration

Every setting, its environment variable and its default: read this to configure a
deployment. All come from `TICKER_*` environment variables, or from a file named by
`TICKER_<NAME>_FILE` (a mounted secret). Booleans take `1/true/yes/on` or
`0/false/no/off`; lists are comma-separated.

<!-- Generated from ticker/config.py by `python -m scripts.config_docs`; edit the
comments there, not this page (tests/test_docs.py fails when they differ). -->

| variable | default | meaning |
| --- | --- | --- |
"""


def _groups() -> list[tuple[list[str], str]]:
    """(field names, comment) in source order: a comment block and the fields right below it."""
    lines = SOURCE.read_text().splitlines()
    cls = next(
        n
        for n in ast.parse(SOURCE.read_text()).body
        if isinstance(n, ast.ClassDef) and n.name == "Settings"
    )
    groups: list[tuple[list[str], str]] = []
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        comment: list[str] = []
        i = node.lineno - 2
        while i >= 0 and lines[i].strip().startswith("#"):
            comment.insert(0, lines[i].strip().lstrip("#").strip())
            i -= 1
        previous_is_field = i >= 0 and lines[i].strip() and not comment
        if previous_is_field and groups:
            groups[-1][0].append(node.target.id)
        else:
            groups.append(([node.target.id], " ".join(comment)))
    return groups


def _default(value: Any) -> str:
    if isinstance(value, bool):
        return "`1`" if value else "`0`"
    if isinstance(value, tuple):
        return "`" + ",".join(str(v) for v in value) + "`"
    if value == "":
        return "(empty)"
    return f"`{value}`"


def render() -> str:
    defaults = {f.name: f.default for f in fields(Settings) if f.default is not MISSING}
    rows = []
    for names, comment in _groups():
        variables = ", ".join(f"`TICKER_{n.upper()}`" for n in names)
        default = ", ".join(_default(defaults[n]) for n in names)
        rows.append(f"| {variables} | {default} | {comment.replace('|', '/')} |")
    return HEAD + "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if PAGE.read_text() != text:
            print(f"{PAGE} is stale: run python -m scripts.config_docs", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The documentation that is generated or read by tools stays true to the code."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from scripts.config_docs import PAGE, render
from ticker.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_the_configuration_page_is_generated_from_settings() -> None:
    """docs/configuration.md is exactly what scripts/config_docs.py makes of Settings
    (a setting added, removed or re-documented without regenerating it fails here),
    and it names every setting."""
    text = PAGE.read_text()
    assert text == render(), "docs/configuration.md is stale: run python -m scripts.config_docs"
    for f in fields(Settings):
        assert f"`TICKER_{f.name.upper()}`" in text


def test_the_readme_keeps_the_test_command_ci_runs() -> None:
    """.ci/run reads the test command from between the README's markers."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- test-command -->\n```sh\n(.+?)\n```", readme, re.S)
    assert match is not None
    assert "pytest" in match.group(1)

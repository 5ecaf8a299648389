"""The help layout every command line of Ticker shares (``ticker``, its subcommands, the bridge)."""

from __future__ import annotations

import argparse

__all__ = ["HelpFormatter"]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default after its help, unless there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, "", [], False):
            return action.help
        return super()._get_help_string(action)

"""Log lines for a person at a terminal, and arq's cron chatter moved to debug.

``ticker run`` on a terminal writes these instead of JSON: the time, the level,
the message and the same extras the JSON lines carry as ``key=value``.
"""

from __future__ import annotations

import logging
import time

__all__ = ["FIELDS", "CronChatter", "HumanFormatter"]

# The record attributes both formats carry besides the message.
FIELDS = ("method", "path", "status", "duration_ms", "principal", "client")


class HumanFormatter(logging.Formatter):
    """``14:02:07 INFO  message key=value``: short, one line (tracebacks follow)."""

    def format(self, record: logging.LogRecord) -> str:
        from ticker.logs import request_id  # logs imports this module

        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        parts = [stamp, f"{record.levelname:<5}", record.getMessage()]
        pairs = [(key, getattr(record, key)) for key in FIELDS if hasattr(record, key)]
        if rid := request_id.get():
            pairs.append(("request_id", rid))
        parts += [f"{key}={_value(value)}" for key, value in pairs if value is not None]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _value(value: object) -> str:
    text = str(value)
    return repr(text) if not text or any(c.isspace() for c in text) else text


class CronChatter(logging.Filter):
    """On arq's worker logger: a cron job's start and finish lines (a webhook sweep
    every five seconds) become debug lines, shown only when debug is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if not any(isinstance(a, str) and a.startswith("cron:") for a in args):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

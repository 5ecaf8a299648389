"""Log lines for a person at a terminal, and arq's idle cron chatter moved to debug.

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
    """On arq's worker logger: a cron job's start line, and its finish line when it did
    nothing (no result, or 0: a webhook sweep every five seconds that re-queued nothing),
    become debug lines, shown only when debug is on. A cron job that did something (its
    finish line names the count), and any failure, retry or expiry, keeps its level."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.levelno != logging.INFO or not any(
            isinstance(a, str) and a.startswith("cron:") for a in args
        ):
            return True
        # arq's job lines: "%6.2fs → %s(%s)%s" (start), "%6.2fs ← %s ● %s" (finish).
        started = " → " in str(record.msg)
        idle = " ← " in str(record.msg) and args[-1] in _NOTHING
        if not (started or idle):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


# A finish line's result when the job did nothing (arq writes "" for None).
_NOTHING = ("", "0", "None")

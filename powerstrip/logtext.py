"""Log lines that cannot be forged: what a client or an adapter wrote is escaped before it is logged.

A path, a header or an adapter's refusal message with CR/LF (or a terminal escape) in it would otherwise
start a new, made-up log line. The access log (proxy/access_log.py) escapes its lines with ``escape``;
every other log record goes through ``EscapingFormatter`` (``configure``).
"""

from __future__ import annotations

import logging
import sys

# C0 controls, DEL, C1 controls and the Unicode line/paragraph separators; the backslash is doubled so an
# escape in the log is always ours
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029", ord("\\"): "\\\\"})
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def escape(text: str) -> str:
    """``text`` with control characters written as ``\\xNN``; cheap when there is nothing to escape."""
    if text.isprintable() and "\\" not in text:
        return text
    return text.translate(_ESCAPES)


class EscapingFormatter(logging.Formatter):
    """Escapes the message of each record; a traceback (our own text) stays multi-line."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = escape(record.message)
        return super().formatMessage(record)


def configure(level: str) -> None:
    """Logging to stderr at ``level`` (``info``, ...), every record escaped."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])

"""Log lines that cannot be forged: what a client or an adapter wrote is escaped before it is logged.

A path, a header or an adapter's refusal message with CR/LF (or a terminal escape) in it would otherwise
start a new, made-up log line. The access log (proxy/access_log.py) escapes its lines with ``escape``;
every other log record goes through ``EscapingFormatter`` (``configure``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import TextIO

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


class BatchedStderr:
    """stderr written in batches: what is written goes out at most ``FLUSH_DELAY`` seconds later, in one write.

    logging's StreamHandler writes and flushes every record: one system call each, which on a gateway
    that logs every refusal (the policy's audit lines) costs a refused request more than relaying an
    allowed one. Here the first record of a batch arms one timer on the running loop; records from a
    thread without a loop, and errors, go out at once (with what waits before them, so the order holds).
    The access log and every logger share this one sink, so their lines stay in order.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._parts: list[str] = []
        self._armed: asyncio.AbstractEventLoop | None = None  # the loop whose timer will flush the batch
        self._lock = threading.Lock()  # records may come from worker threads

    def write(self, text: str, *, now: bool = False) -> None:
        with self._lock:
            self._parts.append(text)
            armed = self._armed
            if armed is not None and not now and not armed.is_closed():
                return
        if not now:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop in this thread (start-up, a worker thread, a test): write now
                pass
            else:
                self._armed = loop  # a loop closed before its timer fired is replaced by the next one
                loop.call_later(FLUSH_DELAY, self.flush)
                return
        self.flush()

    def flush(self) -> None:
        with self._lock:
            self._armed = None
            if not self._parts:
                return
            text, self._parts = "".join(self._parts), []
        stream = self._stream or sys.stderr
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # stderr gone: losing log lines must not cost requests
            pass


FLUSH_DELAY = 0.05
STDERR = BatchedStderr()


class BatchedHandler(logging.Handler):
    """A logging handler onto ``STDERR``: records at ERROR and above are written at once."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            STDERR.write(self.format(record) + "\n", now=record.levelno >= logging.ERROR)
        except Exception:  # noqa: BLE001 - logging's own contract: a broken record must not raise
            self.handleError(record)

    def flush(self) -> None:
        STDERR.flush()


def configure(level: str) -> None:
    """Logging to stderr at ``level`` (``info``, ...), every record escaped, written in batches."""
    handler = BatchedHandler()
    handler.setFormatter(EscapingFormatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    # What FORMAT does not print is not gathered (the logging HOWTO's "Optimization"): no caller frame walk,
    # no thread or process facts (the process id is a system call per record)
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False

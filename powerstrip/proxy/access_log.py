"""The access log: one line per request, written in batches.

Through ``logging`` each line cost a record, a formatter pass and a write system call: about a
quarter of the CPU of an unhooked request. Here a line is one f-string appended to a buffer, and
the buffer goes out in one write at most ``FLUSH_DELAY`` seconds later (and when the gateway stops).
Lines look like the ``logging`` ones around them and obey the ``powerstrip.access`` logger's level.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import TextIO

from powerstrip.logtext import escape

FLUSH_DELAY = 0.05
log = logging.getLogger("powerstrip.access")


class AccessLog:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._flush_pending = False
        self._second = -1
        self._stamp = ""

    @property
    def enabled(self) -> bool:
        return log.isEnabledFor(logging.INFO)

    def _timestamp(self) -> str:
        """``2026-11-22 05:09:37,923``, as ``logging``'s default ``asctime``; formatted once a second."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._stamp},{int((now - second) * 1000):03d}"

    def write(self, line: str) -> None:
        """Append one line; control characters in it (a path, an adapter's message) are escaped."""
        line = escape(line)
        self._lines.append(f"{self._timestamp()} INFO powerstrip.access: {line}\n")
        if not self._flush_pending:
            self._flush_pending = True
            try:
                asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)
            except RuntimeError:  # no loop (a test, a shutdown): write now
                self.flush()

    def flush(self) -> None:
        self._flush_pending = False
        if not self._lines:
            return
        text, self._lines = "".join(self._lines), []
        stream = self._stream or sys.stderr
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # stderr gone: losing access lines must not cost requests
            pass


ACCESS_LOG = AccessLog()

"""The access log: one line per request, written in batches.

Through ``logging`` each line cost a record, a formatter pass and a write system call: about a
quarter of the CPU of an unhooked request. Here an exchange appends one tuple of what its line says
(``exchange``) and the whole batch is formatted and written in one go at most ``FLUSH_DELAY``
seconds later (and when the gateway stops): the timestamp's date and time are formatted once per
second of the batch, each line with one ``%`` operation. Lines look like the ``logging`` ones around
them and obey the ``powerstrip.access`` logger's level.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TextIO

from powerstrip.logtext import STDERR, escape

FLUSH_DELAY = 0.05
log = logging.getLogger("powerstrip.access")


_LINE = "%s,%03d INFO powerstrip.access: %s %s -> %s %.1fms%s\n"


class AccessLog:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        # (time.time(), method, target, status, seconds, rest of the line): formatted at flush
        self._entries: list[tuple[float, str, str, int, float, str]] = []
        self._flush_pending = False

    @property
    def enabled(self) -> bool:
        return log.isEnabledFor(logging.INFO)

    def exchange(self, method: str, target: str, status: int, seconds: float, rest: str = "") -> None:
        """The line of one exchange: ``METHOD TARGET -> STATUS 0.4ms`` then ``rest`` (escaped at flush:
        the target and ``rest`` are what a client or an adapter wrote)."""
        self._entries.append((time.time(), method, target, status, seconds, rest))
        if not self._flush_pending:
            self._flush_pending = True
            try:
                asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)
            except RuntimeError:  # no loop (a test, a shutdown): write now
                self.flush()

    def flush(self) -> None:
        self._flush_pending = False
        if not self._entries:
            return
        entries, self._entries = self._entries, []
        lines = []
        last_second, prefix = -1, ""
        for stamp, method, target, status, seconds, rest in entries:
            second = int(stamp)
            if second != last_second:  # ``2026-11-22 05:09:37``, as logging's asctime before its ",123"
                last_second, prefix = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            lines.append(_LINE % (prefix, (stamp - second) * 1000, method, escape(target), status or "-",
                                  seconds * 1000, escape(rest) if rest else ""))
        if self._stream is None:  # stderr, shared with the other log records: in order with them
            STDERR.write("".join(lines), now=True)
            return
        try:
            self._stream.write("".join(lines))
            self._stream.flush()
        except (OSError, ValueError):  # the stream is gone: losing access lines must not cost requests
            pass


ACCESS_LOG = AccessLog()

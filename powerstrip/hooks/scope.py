"""What an adapter may attach to the exchange it judges: warnings for the client, and a callback for its end.

An admission decision sometimes needs more than "allow" or "refuse": a warning the client should read
(Kubernetes admission's ``warnings``), or state that must be given back when the request is over (a
concurrency slot). Each hooked exchange carries one ``ExchangeScope`` on its ``ClientRequest``; the gateway
turns its warnings into ``Warning`` response headers and calls its end callbacks exactly once, however the
exchange ends: the response sent, a refusal, the client gone, the daemon unreachable, a hook's failure, the
gateway cancelling it at stop, a stream that closes hours later.

Outside the gateway (an adapter served over HTTP, a test) the scope still collects warnings, but nothing
ends it: ``on_end`` says so by returning False, so an adapter never takes what it cannot give back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("powerstrip.hooks")

MAX_WARNINGS = 8  # per exchange: each is a response header, and a hook must not be able to blow up the head
MAX_WARNING_CHARS = 256  # as Kubernetes: longer warnings are cut


class ExchangeScope:
    """One exchange's warnings and end callbacks. ``ends``: the gateway will call ``end`` (in-process only)."""

    __slots__ = ("ends", "warnings", "dropped", "_callbacks", "_ended")

    def __init__(self, ends: bool = False) -> None:
        self.ends = ends
        self.warnings: list[str] = []
        self.dropped = 0  # warnings past MAX_WARNINGS, counted, not kept
        self._callbacks: list[Callable[[], None]] = []
        self._ended = False

    def warn(self, text: str) -> None:
        """Add a warning for the client (a ``Warning`` header), the log and the audit entry; bounded in count
        and length (cut at MAX_WARNING_CHARS characters, ones past MAX_WARNINGS only counted)."""
        if len(self.warnings) >= MAX_WARNINGS:
            self.dropped += 1
            return
        text = str(text)
        self.warnings.append(text if len(text) <= MAX_WARNING_CHARS else text[:MAX_WARNING_CHARS - 3] + "...")

    def on_end(self, callback: Callable[[], None]) -> bool:
        """Call ``callback()`` once when the exchange ends; False (and no call) when nothing will end this
        scope, e.g. in an adapter served over HTTP. After the end it is called at once. It must be quick and
        must not block: it runs in the gateway's ``finally``, also while the exchange is being cancelled."""
        if not self.ends:
            return False
        if self._ended:
            _call(callback)
        else:
            self._callbacks.append(callback)
        return True

    @property
    def awaits_end(self) -> bool:
        """Whether a callback waits for the exchange's end (so the gateway must see the answer through)."""
        return bool(self._callbacks)

    def end(self) -> None:
        """The gateway's: the exchange is over. Every callback runs once, in order; one that raises is logged
        and the others still run. Idempotent."""
        if self._ended:
            return
        self._ended = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _call(callback)

    def __repr__(self) -> str:
        return f"<ExchangeScope ends={self.ends} warnings={len(self.warnings)} callbacks={len(self._callbacks)}>"


def _call(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # noqa: BLE001 - one adapter's bug must not keep the others' callbacks from running
        log.exception("an exchange end callback failed (%r)", callback)

"""Concurrency caps per profile: how many of its requests are in progress, and which requests are long-lived
streams (not counted unless the cap says ``streams: true``).

A slot is taken in the policy's pre-hook and given back by the exchange's end callback
(``hooks.scope.ExchangeScope.on_end``), which the gateway calls exactly once however the exchange ends. A
release closes over its own counter, so a slot taken under rules that were since reloaded, or in a config
generation that was since replaced, is still given back to the count it was taken from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

# Paths (version stripped, cleaned) whose requests last as long as a container or a session, not as long as
# the daemon's work: docker run holds an attach and a wait for its container's life, Traefik and Dozzle hold
# events and logs -f for days. Each entry: the path pattern, and the query flag that makes it a stream (None:
# always one) with that flag's default.
_LONG_LIVED: tuple[tuple[re.Pattern[str], str | None, bool], ...] = (
    (re.compile(r"/events"), None, True),
    (re.compile(r"/containers/[^/]+/attach(?:/ws)?"), None, True),
    (re.compile(r"/containers/[^/]+/wait"), None, True),
    (re.compile(r"/exec/[^/]+/start"), None, True),
    (re.compile(r"/containers/[^/]+/logs"), "follow", False),
    (re.compile(r"/(?:services|tasks)/[^/]+/logs"), "follow", False),
    (re.compile(r"/containers/[^/]+/stats"), "stream", True),
    (re.compile(r"/session|/grpc"), None, True),
)
_FALSE = frozenset({"", "0", "no", "false", "none"})  # moby's httputils.BoolValue


def long_lived(path: str, query: Mapping[str, list[str]]) -> bool:
    """Whether a request to ``path`` (the policy's path) with ``query`` is a long-lived stream."""
    for pattern, flag, default in _LONG_LIVED:
        if pattern.fullmatch(path):
            if flag is None:
                return True
            values = query.get(flag)
            return default if not values else values[0].strip().lower() not in _FALSE
    return False


class Slots:
    """In-progress counts per key (a profile's name)."""

    def __init__(self) -> None:
        self._in_use: dict[str, int] = {}

    def in_use(self, key: str) -> int:
        return self._in_use.get(key, 0)

    def counts(self) -> dict[str, int]:
        return dict(self._in_use)

    def take(self, key: str) -> Callable[[], None]:
        """Count one more request for ``key`` (the caller has checked its cap); the returned release gives the
        slot back, once: calling it again does nothing."""
        self._in_use[key] = self._in_use.get(key, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self._in_use.get(key, 0) - 1
            if left > 0:
                self._in_use[key] = left
            else:
                self._in_use.pop(key, None)

        return release

"""Where the policy comes from, and hot reload: the rules file is checked at most once a second, on use.

A changed file that does not load is refused with one log line; the policy in force stays.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from powerstrip.adapters.policy.loader import PolicyError, load_policy, parse_policy
from powerstrip.adapters.policy.model import Policy
from powerstrip.adapters.policy.socket_proxy import rules_from_env

log = logging.getLogger("powerstrip.policy")

SOCKET_PROXY_ENV = "env:socket-proxy"  # rules: from the environment variables of docker-socket-proxy
CHECK_INTERVAL = 1.0


class PolicySource:
    def __init__(self, rules: str, environ: Mapping[str, str] = os.environ,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._path = None if rules == SOCKET_PROXY_ENV else Path(rules)
        self._checked = clock()
        if self._path is None:
            self.policy = parse_policy(rules_from_env(environ), "socket-proxy environment")
            self._signature: tuple[int, int, int, int] | None = None
        else:
            self._signature = _signature(self._path)
            self.policy = load_policy(self._path)

    def current(self) -> Policy:
        """The policy in force, reloaded first if its file changed (checked at most once a second)."""
        if self._path is None or self._clock() - self._checked < CHECK_INTERVAL:
            return self.policy
        self._checked = self._clock()
        signature = _signature(self._path)
        if signature != self._signature:
            self._signature = signature
            try:
                self.policy = load_policy(self._path)
            except PolicyError as exc:
                log.error("policy reload refused, the rules in force stay: %s", "; ".join(exc.problems))
            else:
                log.info("policy reloaded from %s: %d profile(s)", self._path, len(self.policy.profiles))
        return self.policy


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns

"""Run netlink work inside another network namespace, on a thread of its own.

``setns(2)`` with ``CLONE_NEWNET`` moves only the calling thread, so a short-lived thread enters the
container's namespace, opens its netlink socket there, does the work and ends; the process (the
gateway, with its event loop and client connections) never changes namespace and never forks
(pyroute2's own ``netns=`` forks a helper, which a busy gateway should not do every pass).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from pyroute2 import IPRoute

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
TIMEOUT = 20.0
_libc = ctypes.CDLL(None, use_errno=True)


def run_in(netns: str, work: Callable[[IPRoute], T], timeout: float = TIMEOUT) -> T:
    """``work(ipr)`` with an ``IPRoute`` of the namespace at path ``netns`` (e.g. /proc/PID/ns/net)."""
    outcome: dict[str, object] = {}

    def enter_and_work() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            with IPRoute() as ipr:
                outcome["value"] = work(ipr)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=enter_and_work, name="powerstrip-qos-netns", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"netlink work in {netns} took longer than {timeout:g}s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]

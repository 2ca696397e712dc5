"""The daemon being unreachable: the one error of the daemon side that has a type of its own."""

from __future__ import annotations


class DaemonUnavailable(ConnectionError):
    """The Docker daemon cannot be reached; the client gets a 502 and the next request tries again."""

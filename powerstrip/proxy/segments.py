"""How a client's TCP socket cuts what the relay writes into segments.

Every accepted TCP socket has ``TCP_NODELAY`` (asyncio and uvloop set it): each write leaves at once,
which is what a request and its answer want. A large body relayed as the daemon produces it is another
matter: dockerd flushes each log line or archive block, the relay writes each read on, and a client on
the far side then takes one segment, one wake-up and one ``read`` per ~11 KiB. HAProxy sends such
bodies with ``MSG_MORE``; uvloop's transports cannot pass that flag, so the relay lets the kernel
coalesce the same way: ``TCP_NODELAY`` off once a bulk write shows the body streams, back on when the
exchange ends (which pushes the tail out at once, so the answer's end is never held).

Nagle's algorithm holds a partial segment only while earlier data is unacknowledged, so a stream that
slows down after a burst (``logs --follow`` catching up, a TTY after ``cat``) still gets each write out
as soon as the client has acknowledged the last: at most one round trip late, as with HAProxy's
``MSG_MORE``. A hijacked stream (``attach``, ``exec``: raw bytes after a ``101``) is not coalesced at all:
it may be a TTY, whose echoes must not wait, and it has no end of exchange to push a tail. Turning it back on at each small write was tried and measured worse than not coalescing at
all: a followed log alternates large reads with single lines, and each switch is a system call and a push.
"""

from __future__ import annotations

import socket
from typing import Any

# A write this large means the daemon produced faster than the relay read: a bulk body.
BULK_WRITE = 16 * 1024


class Segments:
    """``TCP_NODELAY`` of one client socket, following the size of the writes relayed to it."""

    __slots__ = ("_socket", "_coalescing")

    def __init__(self, sock: Any) -> None:
        self._socket = sock
        self._coalescing = False

    @classmethod
    def of(cls, transport: Any) -> Segments | None:
        """The policy for ``transport``'s socket, or ``None`` if it is not TCP (a unix socket has no segments)."""
        sock = transport.get_extra_info("socket")
        if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        return cls(sock)

    def wrote(self, size: int) -> None:
        if size >= BULK_WRITE and not self._coalescing:
            self._set_nodelay(False)

    def flush(self) -> None:
        """The exchange is over: what is held goes out now, and the next answer leaves at once."""
        if self._coalescing:
            self._set_nodelay(True)

    def _set_nodelay(self, on: bool) -> None:
        try:
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if on else 0)
        except OSError:  # the connection is already gone: nothing is left to cut into segments
            pass
        self._coalescing = not on

"""How a client's TCP socket cuts what the relay writes into segments.

Every accepted TCP socket has ``TCP_NODELAY`` (asyncio and uvloop set it): each write leaves at once,
which is what a request and its answer want. A large body relayed as the daemon produces it is another
matter: dockerd flushes each log line or archive block, the relay writes each read on, and a client on
the far side then takes one segment, one wake-up and one ``read`` per ~11 KiB. HAProxy sends such
bodies with ``MSG_MORE``; uvloop's transports cannot pass that flag, so the relay corks the socket
(``TCP_CORK``, the same holding of partial segments) while a bulk body streams:

- it corks at a relayed write of ``BULK_WRITE`` or more (the daemon produced faster than the relay read);
- it uncorks when the exchange ends, which pushes the tail out at once, so an answer's end is never held;
- it uncorks when the body slows below ``BULK_BYTES`` per ``CHECK_SECONDS`` (``logs --follow`` that has
  caught up with its backlog): the kernel would otherwise hold a partial segment for up to 200 ms.

Two alternatives were measured on a 64 MiB log and rejected: switching back at each small write (a log that
the relay has caught up with alternates large reads and single lines; each switch is a system call and a
push: worse than no coalescing), and Nagle's algorithm (``TCP_NODELAY`` off; it holds data only while
earlier data is unacknowledged, which on loopback is rarely: 0.90 of direct against 1.0 corked).
A hijacked stream is never corked (see the driver): it may be a TTY.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

# A write this large means the daemon produced faster than the relay read: a bulk body.
BULK_WRITE = 16 * 1024
# A body stays corked while it streams at least this much per check (64 KiB in 5 ms: 12.5 MiB/s).
BULK_BYTES = 64 * 1024
CHECK_SECONDS = 0.005


class Segments:
    """``TCP_CORK`` of one client socket, following the size and pace of the writes relayed to it.

    The socket is corked exactly while a pace check is pending (``_check``): one timer per corked connection.
    """

    __slots__ = ("_socket", "_written", "_timer")

    def __init__(self, sock: Any) -> None:
        self._socket = sock
        self._written = 0
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def of(cls, transport: Any) -> Segments | None:
        """The policy for ``transport``'s socket, or ``None`` if it is not TCP (a unix socket has no segments)."""
        sock = transport.get_extra_info("socket")
        if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        return cls(sock)

    def wrote(self, size: int) -> None:
        if self._timer is not None:
            self._written += size
        elif size >= BULK_WRITE and self._set_cork(True):
            self._written = 0
            self._timer = asyncio.get_running_loop().call_later(CHECK_SECONDS, self._check)

    def flush(self) -> None:
        """The exchange is over (or the connection is): what is held goes out now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._set_cork(False)

    def _check(self) -> None:
        if self._written >= BULK_BYTES:
            self._written = 0
            self._timer = asyncio.get_running_loop().call_later(CHECK_SECONDS, self._check)
        else:
            self._timer = None
            self._set_cork(False)

    def _set_cork(self, on: bool) -> bool:
        try:
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1 if on else 0)
        except OSError:  # the connection is already gone: nothing is left to cut into segments
            return False
        return True

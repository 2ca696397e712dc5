"""Who the client is: the kernel's word for unix sockets (SO_PEERCRED), the address for TCP."""

from __future__ import annotations

import asyncio
import socket
import struct

from powerstrip.hooks.model import UNKNOWN_PEER, Peer

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def peer_of(transport: asyncio.BaseTransport) -> Peer:
    """Read once per connection: a unix peer's credentials are those it had when it connected."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return UNKNOWN_PEER
    if sock.family == socket.AF_UNIX and hasattr(socket, "SO_PEERCRED"):
        try:
            pid, uid, gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
        except OSError:
            return UNKNOWN_PEER
        return Peer(uid=uid, gid=gid, pid=pid)
    address = transport.get_extra_info("peername")
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return Peer(address=f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return UNKNOWN_PEER

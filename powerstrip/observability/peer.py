"""Who is at the other end of a client connection, as far as the socket can tell."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
# Python names the attributes in full; logs and other tools (openssl, Go) use the short forms
_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
          "stateOrProvinceName": "ST", "localityName": "L", "domainComponent": "DC"}


def client_identity(writer: asyncio.StreamWriter) -> dict[str, Any]:
    """Unix socket: the peer's pid/uid/gid (SO_PEERCRED, as the kernel saw them at connect time).
    TCP: the peer's address and port. TLS: the client certificate's subject, when one was given."""
    sock = writer.get_extra_info("socket")
    identity: dict[str, Any] = {}
    if sock is not None and sock.family == socket.AF_UNIX:
        identity["transport"] = "unix"
        try:
            pid, uid, gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
        except OSError:
            pass
        else:
            identity.update(uid=uid, gid=gid, pid=pid)
    else:
        peer = writer.get_extra_info("peername")
        identity["transport"] = "tcp"
        if isinstance(peer, tuple) and len(peer) >= 2:
            identity.update(address=peer[0], port=peer[1])
    if writer.get_extra_info("sslcontext") is not None:
        identity["tls"] = True
        cert = writer.get_extra_info("peercert")
        if cert:
            identity["cert_subject"] = _subject(cert)
    return identity


def _subject(cert: dict[str, Any]) -> str:
    """``CN=alice,O=example``: the certificate subject as one string, in the certificate's order."""
    return ",".join(f"{_SHORT.get(key, key)}={value}" for rdn in cert.get("subject", ()) for key, value in rdn)

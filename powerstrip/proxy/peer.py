"""Who the client is: the kernel's word for unix sockets (SO_PEERCRED), the address for TCP, the
client certificate for TLS, and the listener it came in on."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from typing import Any

from powerstrip.hooks.model import UNKNOWN_PEER, Peer

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid

# Python names the attributes in full; logs and other tools (openssl, Go) use the short forms
_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
          "stateOrProvinceName": "ST", "localityName": "L", "domainComponent": "DC"}


def peer_of(writer: asyncio.StreamWriter) -> Peer:
    """Read once per connection: a unix peer's credentials are those it had when it connected."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return UNKNOWN_PEER
    if sock.family == socket.AF_UNIX and hasattr(socket, "SO_PEERCRED"):
        listener = _unix_listener(writer.get_extra_info("sockname"))
        try:
            pid, uid, gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
        except OSError:
            return Peer(listener=listener)
        return Peer(uid=uid, gid=gid, pid=pid, listener=listener, **_certificate(writer))
    address = writer.get_extra_info("peername")
    local = writer.get_extra_info("sockname")
    listener = f"tcp://{_host_port(local)}" if isinstance(local, tuple) and len(local) >= 2 else None
    if isinstance(address, tuple) and len(address) >= 2:
        return Peer(address=_host_port(address), listener=listener, **_certificate(writer))
    return Peer(listener=listener)


def _host_port(address: tuple[Any, ...]) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _unix_listener(name: Any) -> str | None:
    if isinstance(name, bytes):
        name = name.decode("utf-8", "surrogateescape")
    return f"unix://{os.path.abspath(name)}" if isinstance(name, str) and name else None


def _certificate(writer: asyncio.StreamWriter) -> dict[str, Any]:
    """The verified client certificate's subject and names (only a CA-verified one is given by ssl)."""
    if writer.get_extra_info("sslcontext") is None:
        return {}
    cert = writer.get_extra_info("peercert")
    if not cert:
        return {}
    rdns = [(_SHORT.get(key, key), value) for rdn in cert.get("subject", ()) for key, value in rdn]
    return {
        "cert_subject": ",".join(f"{key}={value}" for key, value in rdns),
        "cert_cn": next((value for key, value in rdns if key == "CN"), None),
        "cert_sans": tuple(f"{kind}:{value}" for kind, value in cert.get("subjectAltName", ())),
    }

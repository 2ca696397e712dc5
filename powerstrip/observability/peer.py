"""The audit log's ``client``: the connection's peer (``proxy.peer``), with its TLS client certificate."""

from __future__ import annotations

from typing import Any

from powerstrip.proxy.connection import ClientConnection


def client_identity(client: ClientConnection) -> dict[str, Any]:
    """Unix socket: uid/gid/pid (SO_PEERCRED, as the kernel saw them at connect time). TCP: the peer's
    ``host:port``. TLS: ``tls`` and the client certificate's subject, when one was given."""
    peer = client.peer
    identity: dict[str, Any]
    if peer.uid is not None:
        identity = {"transport": "unix", "uid": peer.uid, "gid": peer.gid, "pid": peer.pid}
    elif peer.address is not None:
        identity = {"transport": "tcp", "address": peer.address}
    else:
        identity = {"transport": "unknown"}
    if client.extra_info("sslcontext") is not None:
        identity["tls"] = True
        if peer.cert_subject:
            identity["cert_subject"] = peer.cert_subject
    return identity

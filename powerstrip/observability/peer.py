"""The audit log's ``client``: the connection's peer (``proxy.peer``), plus its TLS client certificate."""

from __future__ import annotations

from typing import Any

from powerstrip.proxy.connection import ClientConnection

# Python names the attributes in full; logs and other tools (openssl, Go) use the short forms
_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
          "stateOrProvinceName": "ST", "localityName": "L", "domainComponent": "DC"}


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
        cert = client.extra_info("peercert")
        if cert:
            identity["cert_subject"] = _subject(cert)
    return identity


def _subject(cert: dict[str, Any]) -> str:
    """``O=example,CN=alice``: the certificate subject as one string, in the certificate's order."""
    return ",".join(f"{_SHORT.get(key, key)}={value}" for rdn in cert.get("subject", ()) for key, value in rdn)

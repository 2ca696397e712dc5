"""Cluster settings: where the etcd cluster is, and this host's address on the underlay.

``--cluster etcd://H:P[,H:P...]`` names the endpoints of one etcd cluster; the client fails over
between them. ``etcds://`` is the same over TLS (``--cluster-cacert``, and a client certificate with
``--cluster-cert``/``--cluster-key``), and ``--cluster-user NAME:PASSWORD`` logs in, as etcdctl's
``--cacert``, ``--cert``, ``--key`` and ``--user`` do. The underlay address is what the other hosts send VXLAN packets to; by default it
is the source address of this host's route to the first endpoint (no packet is sent to find it).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from ipaddress import IPv4Address
from urllib.parse import urlsplit

from powerstrip.adapters.net.etcd_client import Credentials, Etcd, StoreTLS
from powerstrip.adapters.net.housekeeping import LOST_HOST_GRACE
from powerstrip.adapters.net.model import InvalidInput

DEFAULT_MTU = 1450  # a 1500-byte underlay minus the 50 bytes of VXLAN over IPv4
MIN_MTU, MAX_MTU = 1280, 9000
VXLAN_PORT = 4789


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """What the ``net`` adapter needs to join the cluster; the host is known by its underlay address."""

    endpoints: tuple[tuple[str, int], ...]
    advertise: str
    mtu: int = DEFAULT_MTU
    gateway: str | None = None  # the URL of this host's gateway for other hosts and the inventory
    tls: StoreTLS | None = None  # etcds://
    credentials: Credentials | None = None
    lost_host_grace: float = LOST_HOST_GRACE  # seconds before a lost host's addresses are reclaimed
    dns_upstreams: tuple[str, ...] = ()  # where unknown names go (empty: the host's resolv.conf servers)

    @property
    def url(self) -> str:
        scheme = "etcds" if self.tls is not None else "etcd"
        return f"{scheme}://" + ",".join(f"{host}:{port}" for host, port in self.endpoints)

    def connect(self) -> Etcd:
        """A client of the cluster store (no request is sent yet)."""
        return Etcd(self.endpoints, tls=self.tls, credentials=self.credentials)


def parse_endpoints(url: str) -> tuple[tuple[str, int], ...]:
    """``etcd://10.0.0.1:2379,10.0.0.2:2379`` → ((host, port), ...); the port defaults to 2379."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme not in ("etcd", "etcds") or not rest:
        raise InvalidInput(f"invalid cluster {url!r}: expected etcd://HOST:PORT[,HOST:PORT...] (etcds:// for TLS)")
    endpoints = []
    for item in rest.rstrip("/").split(","):
        parts = urlsplit(f"//{item.strip()}")
        try:
            port = parts.port or 2379
        except ValueError:
            raise InvalidInput(f"invalid cluster endpoint {item!r}: bad port") from None
        if not parts.hostname:
            raise InvalidInput(f"invalid cluster endpoint {item!r}: expected HOST:PORT")
        endpoints.append((parts.hostname, port))
    return tuple(endpoints)


def route_source(host: str, port: int) -> str:
    """The local address the kernel would use to reach ``host`` (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, port))
        except OSError as exc:
            raise InvalidInput(f"no route to the cluster store {host}:{port} ({exc}): give --advertise ADDRESS") from None
        return probe.getsockname()[0]


def _store_security(url: str, cacert: str | None = None, cert: str | None = None, key: str | None = None,
                   user: str | None = None, password: str | None = None) -> tuple[StoreTLS | None, Credentials | None]:
    """TLS and credentials for the cluster URL ``url``, checked as etcdctl would (``--user NAME[:PASSWORD]``)."""
    tls = None
    if url.strip().startswith("etcds://"):
        if bool(cert) != bool(key):
            raise InvalidInput("--cluster-cert and --cluster-key go together")
        tls = StoreTLS(cacert, cert, key)
    elif cacert or cert or key:
        raise InvalidInput("--cluster-cacert/--cluster-cert/--cluster-key need an etcds:// cluster URL")
    credentials = None
    if user:
        name, sep, inline = user.partition(":")
        secret = inline if sep else password
        if not name or secret is None:
            raise InvalidInput("--cluster-user needs a password: NAME:PASSWORD, or --cluster-password "
                               "(env POWERSTRIP_CLUSTER_PASSWORD)")
        credentials = Credentials(name, secret)
    elif password:
        raise InvalidInput("--cluster-password needs --cluster-user")
    return tls, credentials


def cluster_settings(url: str, advertise: str | None = None, mtu: int = DEFAULT_MTU, gateway: str | None = None, *,
                     cacert: str | None = None, cert: str | None = None, key: str | None = None,
                     user: str | None = None, password: str | None = None,
                     lost_host_grace: float = LOST_HOST_GRACE, dns_upstreams: tuple[str, ...] = ()) -> ClusterSettings:
    endpoints = parse_endpoints(url)
    tls, credentials = _store_security(url, cacert, cert, key, user, password)
    address = advertise or route_source(*endpoints[0])
    try:
        IPv4Address(address)
    except ValueError:
        raise InvalidInput(f"invalid underlay address {address!r}: expected an IPv4 address") from None
    if not MIN_MTU <= mtu <= MAX_MTU:
        raise InvalidInput(f"invalid overlay MTU {mtu}: expected {MIN_MTU}-{MAX_MTU}")
    if gateway is not None and urlsplit(gateway).scheme not in ("unix", "tcp"):
        raise InvalidInput(f"invalid gateway URL {gateway!r}: expected tcp://HOST:PORT or unix:///PATH")
    if lost_host_grace < 0:
        raise InvalidInput(f"invalid lost host grace {lost_host_grace}: expected seconds >= 0")
    for upstream in dns_upstreams:
        try:
            IPv4Address(upstream)
        except ValueError:
            raise InvalidInput(f"invalid DNS server {upstream!r}: expected an IPv4 address") from None
    return ClusterSettings(endpoints, address, mtu, gateway, tls, credentials, lost_host_grace, tuple(dns_upstreams))

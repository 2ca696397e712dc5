"""Cluster settings: where the etcd cluster is, and this host's address on the underlay.

``--cluster etcd://H:P[,H:P...]`` names the endpoints of one etcd cluster; the client fails over
between them. The underlay address is what the other hosts send VXLAN packets to; by default it
is the source address of this host's route to the first endpoint (no packet is sent to find it).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from ipaddress import IPv4Address
from urllib.parse import urlsplit

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

    @property
    def url(self) -> str:
        return "etcd://" + ",".join(f"{host}:{port}" for host, port in self.endpoints)


def parse_endpoints(url: str) -> tuple[tuple[str, int], ...]:
    """``etcd://10.0.0.1:2379,10.0.0.2:2379`` → ((host, port), ...); the port defaults to 2379."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme != "etcd" or not rest:
        raise InvalidInput(f"invalid cluster {url!r}: expected etcd://HOST:PORT[,HOST:PORT...]")
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


def cluster_settings(url: str, advertise: str | None = None, mtu: int = DEFAULT_MTU,
                     gateway: str | None = None) -> ClusterSettings:
    endpoints = parse_endpoints(url)
    address = advertise or route_source(*endpoints[0])
    try:
        IPv4Address(address)
    except ValueError:
        raise InvalidInput(f"invalid underlay address {address!r}: expected an IPv4 address") from None
    if not MIN_MTU <= mtu <= MAX_MTU:
        raise InvalidInput(f"invalid overlay MTU {mtu}: expected {MIN_MTU}-{MAX_MTU}")
    if gateway is not None and urlsplit(gateway).scheme not in ("unix", "tcp"):
        raise InvalidInput(f"invalid gateway URL {gateway!r}: expected tcp://HOST:PORT or unix:///PATH")
    return ClusterSettings(endpoints, address, mtu, gateway)

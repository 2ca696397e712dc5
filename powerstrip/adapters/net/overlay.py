"""The data path of a multi-host network on one host: kernel VXLAN under the network's bridge (netlink).

Per network (segment) the host has the Docker bridge ``psbrVNI`` and, enslaved to it, a VXLAN device
``psvxVNI`` (the network's VNI, UDP 4789, no learning, no multicast). The peers are written
explicitly into the VXLAN device's forwarding database: one all-zeros entry per other host (where
broadcast, unknown unicast and multicast go: head-end replication) and one entry per remote
container MAC (straight to its host). Nothing here reads the store: ``converge`` is given the
wanted state and makes the kernel match it, so it can be rerun at any time.

Every host's bridge carries the gateway address (anycast gateway). A container's ARP request for
the gateway stays on its host (``neigh_suppress`` on the VXLAN port: the bridge does not forward
ARP requests for its own addresses into the tunnel), and all bridges get the same MAC, derived from
the gateway address, so no host's frames ever show the peers a second router for the same address.
(tc filters would be the other way; the kernels this runs on may lack the classifier modules.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from pyroute2 import IPRoute

from powerstrip.adapters.net.cluster import VXLAN_PORT

# pyroute2 logs every netlink message at debug level: thousands of lines per pass at --log-level debug.
logging.getLogger("pyroute2").setLevel(logging.INFO)

BRIDGE_PREFIX, VXLAN_PREFIX = "psbr", "psvx"
ZERO_MAC = "00:00:00:00:00:00"
_NTF_SELF = 0x02
_IFF_UP = 0x1
_NUD_PERMANENT_NOARP = 0x80 | 0x40


def bridge_name(vni: int) -> str:
    return f"{BRIDGE_PREFIX}{vni}"


def vxlan_name(vni: int) -> str:
    return f"{VXLAN_PREFIX}{vni}"


def gateway_mac(gateway: IPv4Address) -> str:
    """Locally administered, the same on every host: 02:50 followed by the gateway's address."""
    return "02:50:" + ":".join(f"{b:02x}" for b in gateway.packed)


def container_mac(address: IPv4Address) -> str:
    """The MAC the Docker bridge driver gives an endpoint with ``address`` (02:42 and the address)."""
    return "02:42:" + ":".join(f"{b:02x}" for b in address.packed)


@dataclass(frozen=True, slots=True)
class Segment:
    """What one network needs on this host: its VNI and gateway, the other hosts, remote MAC → host."""

    vni: int
    gateway: IPv4Address
    peers: frozenset[str]
    macs: dict[str, str] = field(default_factory=dict)


class Overlay:
    """Programs the kernel of the current network namespace; ``local`` is this host's underlay address."""

    def __init__(self, local: str, mtu: int) -> None:
        self.local = local
        self.mtu = mtu

    def converge(self, segments: Iterable[Segment]) -> list[int]:
        """Make the kernel match ``segments``; returns the VNIs that are wired (those with a local bridge)."""
        wanted = {s.vni: s for s in segments}
        wired = []
        with IPRoute() as ipr:
            for vni, segment in wanted.items():
                bridges = ipr.link_lookup(ifname=bridge_name(vni))
                if bridges:
                    self._wire(ipr, bridges[0], segment)
                    wired.append(vni)
            for link in ipr.get_links():
                name = link.get("IFLA_IFNAME") or ""
                if name.startswith(VXLAN_PREFIX) and (int(name[len(VXLAN_PREFIX):] or 0) not in wired):
                    ipr.link("del", index=link["index"])  # its network is gone, or its bridge is
        return wired

    def _wire(self, ipr: IPRoute, bridge: int, segment: Segment) -> None:
        mac = gateway_mac(segment.gateway)
        (link,) = ipr.get_links(bridge)
        if link.get("IFLA_ADDRESS") != mac:
            ipr.link("set", index=bridge, address=mac)
        vxlan = self._vxlan(ipr, segment.vni, bridge)
        wanted = {(ZERO_MAC, peer) for peer in segment.peers}
        wanted |= {(m, host) for m, host in segment.macs.items() if host in segment.peers}
        present = set()
        for entry in ipr.fdb("dump", ifindex=vxlan):
            dst = entry.get("NDA_DST")
            if dst and entry["flags"] & _NTF_SELF:
                present.add((entry.get("NDA_LLADDR"), dst))
        for lladdr, dst in present - wanted:
            ipr.fdb("del", ifindex=vxlan, lladdr=lladdr, dst=dst)
        for lladdr, dst in sorted(wanted - present):
            if lladdr == ZERO_MAC:  # several all-zeros entries: one per peer
                ipr.fdb("append", ifindex=vxlan, lladdr=lladdr, dst=dst)
            else:
                ipr.fdb("replace", ifindex=vxlan, lladdr=lladdr, dst=dst, flags=_NTF_SELF, state=_NUD_PERMANENT_NOARP)

    def _vxlan(self, ipr: IPRoute, vni: int, bridge: int) -> int:
        name = vxlan_name(vni)
        found = ipr.link_lookup(ifname=name)
        if found:
            (link,) = ipr.get_links(found[0])
            data = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA") or {}
            local = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA", "IFLA_VXLAN_LOCAL")
            if data and local == self.local and link.get("IFLA_MTU") == self.mtu:
                index = found[0]
                suppressed = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_SLAVE_DATA", "IFLA_BRPORT_NEIGH_SUPPRESS")
                if link.get("IFLA_MASTER") != bridge or not link["flags"] & _IFF_UP or not suppressed:
                    self._enslave(ipr, index, bridge)
                return index
            ipr.link("del", index=found[0])  # made for another underlay address or MTU: remake it
        ipr.link("add", ifname=name, kind="vxlan", vxlan_id=vni, vxlan_local=self.local, vxlan_port=VXLAN_PORT,
                 vxlan_learning=0, vxlan_udp_csum=0, mtu=self.mtu)  # RFC 7348: a zero UDP checksum over IPv4
        index = ipr.link_lookup(ifname=name)[0]
        self._enslave(ipr, index, bridge)
        return index

    @staticmethod
    def _enslave(ipr: IPRoute, vxlan: int, bridge: int) -> None:
        # neigh_suppress: the bridge does not send ARP requests for its own addresses (the gateway)
        # through the tunnel, so only the container's own host ever answers for the gateway.
        ipr.link("set", index=vxlan, master=bridge, state="up")
        ipr.brport("set", index=vxlan, neigh_suppress=1)

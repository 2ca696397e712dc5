"""What the kernel must hold for one container, computed from the policies with no I/O.

Where a policy acts:
- ``rate`` with ``ip-src`` (or with neither ``ip-src`` nor ``ip-dst``): on what each matching
  container *sends*, in its own network namespace (root HTB of its ``eth0``);
- ``rate`` with ``ip-dst`` only: on what each matching container *receives*, on the host side of
  its veth (the bridge port's egress), whoever sends it (another container, another host, the host);
- ``dscp``: on what each matching container sends (an iptables ``DSCP`` rule in its namespace), so
  the mark is on the wire from the first hop.
A rate is per container: every container a policy matches gets a bucket of that rate of its own.
A policy restricted to one host (``Policy.host``: a host-aware rule's ``qos:`` action) matches
only the containers that host runs.
Packets that no policy matches are not classified and leave unshaped (HTB's direct queue).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from powerstrip.adapters.qos.policy import CONTAINER, HOST, LOCAL_HOST, MIN_BURST, PROTOCOLS, Match, Policy, rate_side

BURST_SECONDS = 0.01  # default burst: 10 ms at the rate, plus one full frame (as tc's own default)
FRAME = 1514


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A container on a powerstrip network: ``owner`` is the network-only container whose network
    namespace it shares; ``container`` the name users know it by; ``host`` the host that runs it."""

    owner: str
    container: str
    network: str
    address: IPv4Address
    host: str = LOCAL_HOST


@dataclass(frozen=True, slots=True)
class Shaper:
    """One HTB class (``minor`` under the root) and the u32 filter that sends matching packets to it."""

    policy: str
    minor: int
    rate: int  # bits per second
    burst: int  # bytes
    keys: tuple[str, ...]  # u32 keys as pyroute2 writes them: "VALUE/MASK+OFFSET" (32-bit words)

    @property
    def quantum(self) -> int:
        """Bytes per round; only matters between siblings that borrow, which ours never do (rate = ceil)."""
        return min(max(self.rate // 8 // 10, FRAME), 200_000)


@dataclass(frozen=True, slots=True)
class Mark:
    """One DSCP rule: iptables match arguments for what the container sends, and the value."""

    policy: str
    dscp: int
    match: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EndpointPlan:
    endpoint: Endpoint
    egress: tuple[Shaper, ...] = ()  # the container's eth0, in its namespace
    ingress: tuple[Shaper, ...] = ()  # the host side of its veth
    marks: tuple[Mark, ...] = ()

    def placements(self) -> dict[str, str]:
        """policy -> where it acts on this container (``container``, ``host`` or both)."""
        found: dict[str, set[str]] = {}
        for item in (*self.egress, *self.marks):
            found.setdefault(item.policy, set()).add(CONTAINER)
        for item in self.ingress:
            found.setdefault(item.policy, set()).add(HOST)
        return {name: "+".join(sorted(sides)) for name, sides in found.items()}


def plan(endpoint: Endpoint, policies: list[Policy]) -> EndpointPlan:
    egress: list[Shaper] = []
    ingress: list[Shaper] = []
    marks: list[Mark] = []
    for policy in sorted(policies, key=lambda p: p.name):
        m = policy.match
        if m.network not in (None, endpoint.network) or not policy.applies_on(endpoint.host):
            continue
        sends = _within(endpoint.address, m.ip_src)
        if policy.rate is not None:
            side = rate_side(policy)
            if side == HOST and _within(endpoint.address, m.ip_dst):
                ingress.append(_shaper(policy, len(ingress) + 1))
            elif side == CONTAINER and sends:
                egress.append(_shaper(policy, len(egress) + 1))
        if policy.dscp is not None and sends:
            marks.append(Mark(policy.name, policy.dscp, iptables_match(m)))
    return EndpointPlan(endpoint, tuple(egress), tuple(ingress), tuple(marks))


def default_burst(rate: int) -> int:
    return max(MIN_BURST, int(rate / 8 * BURST_SECONDS) + FRAME)


def u32_keys(match: Match) -> tuple[str, ...]:
    """The IPv4 header words a packet must match. Ports are read at offset 20: packets with IP
    options (rare, and never sent by Linux for TCP/UDP by default) do not match a port policy."""
    keys = []
    if match.tp_src is not None or match.tp_dst is not None:
        keys.append("0x05000000/0x0f000000+0")  # IHL 5: the transport header follows at 20
    if match.protocol is not None:
        keys.append(f"0x00{match.protocol:02x}0000/0x00ff0000+8")
    for net, offset in ((match.ip_src, 12), (match.ip_dst, 16)):
        if net is not None and net.prefixlen:
            keys.append(f"0x{int(net.network_address):08x}/0x{int(net.netmask):08x}+{offset}")
    if match.tp_src is not None or match.tp_dst is not None:
        value = ((match.tp_src or 0) << 16) | (match.tp_dst or 0)
        mask = (0xFFFF0000 if match.tp_src is not None else 0) | (0xFFFF if match.tp_dst is not None else 0)
        keys.append(f"0x{value:08x}/0x{mask:08x}+20")
    return tuple(keys) or ("0x0/0x0+0",)  # no field: every IPv4 packet


def iptables_match(match: Match) -> tuple[str, ...]:
    args = ["-o", "eth0"]
    for flag, net in (("-s", match.ip_src), ("-d", match.ip_dst)):
        if net is not None:
            args += [flag, str(net)]
    if match.protocol is not None:
        names = {number: name for name, number in PROTOCOLS.items()}  # by name, iptables loads its port match
        args += ["-p", names.get(match.protocol, str(match.protocol))]
    if match.tp_src is not None:
        args += ["--sport", str(match.tp_src)]
    if match.tp_dst is not None:
        args += ["--dport", str(match.tp_dst)]
    return tuple(args)


def _within(address: IPv4Address, net: IPv4Network | None) -> bool:
    return net is None or address in net


def _shaper(policy: Policy, minor: int) -> Shaper:
    assert policy.rate is not None
    burst = policy.burst or default_burst(policy.rate.bits)
    return Shaper(policy.name, minor, policy.rate.bits, burst, u32_keys(policy.match))

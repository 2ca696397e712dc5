"""Container names across hosts: a DNS resolver on every network's gateway address, answered from the
cluster state.

Docker's embedded DNS (127.0.0.11 in every container on a user-defined network) answers the names
of containers on the same network *on the same host*, and forwards every other query to the
container's DNS servers. powerstrip gives each network-only container its network's gateway as that
server (``HostConfig.Dns``), and listens there: the gateway is on every host's bridge (anycast), so
a container always asks its own host's powerstrip. A query comes from the asking container's
address, which tells the network: names of containers on that network (anywhere in the cluster)
are answered with their address; any other name is forwarded to the host's resolvers, as Docker
does. The table is rebuilt by the converger from the store on every change it sees (an etcd watch,
and every resync at the latest), so a removed container stops resolving within ``resync`` seconds
plus the answers' TTL (``TTL``). The wire format is dnspython's.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from powerstrip.adapters.net.model import Allocation, Network

log = logging.getLogger(__name__)

DNS_PORT = 53
TTL = 2  # seconds an answer may be cached: part of the bound on how long a removed name resolves
FORWARD_TIMEOUT = 2.0
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)  # bind a gateway before Docker has put it on the bridge


@dataclass(frozen=True, slots=True)
class NameTable:
    """Names per network (lower-case, no trailing dot) and the network of each address in use."""

    names: dict[str, dict[str, IPv4Address]]
    networks: dict[IPv4Address, str]

    @classmethod
    def of(cls, allocations: Iterable[Allocation]) -> NameTable:
        names: dict[str, dict[str, IPv4Address]] = {}
        networks: dict[IPv4Address, str] = {}
        for allocation in allocations:
            networks[allocation.address] = allocation.network
            if allocation.container_name:
                names.setdefault(allocation.network, {})[allocation.container_name.lower()] = allocation.address
        return cls(names, networks)

    def lookup(self, source: IPv4Address, name: str) -> IPv4Address | None:
        """``name`` as seen from a container at ``source``: only names on the asker's own network."""
        network = self.networks.get(source)
        return self.names.get(network, {}).get(name.lower().rstrip(".")) if network else None


def host_resolvers(path: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The host's name servers, where unknown names go (Docker forwards there too)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    return [line.split()[1] for line in lines if line.startswith("nameserver") and len(line.split()) > 1]


class NameService:
    """UDP DNS on the gateway address of every network, answering from a ``NameTable``."""

    def __init__(self, upstreams: list[str] | None = None, port: int = DNS_PORT) -> None:
        self.table = NameTable({}, {})
        self.upstreams = upstreams if upstreams is not None else host_resolvers()
        self.port = port
        self._wanted: set[IPv4Address] = set()
        self._endpoints: dict[IPv4Address, asyncio.DatagramTransport] = {}
        self._failed: set[IPv4Address] = set()

    def update(self, networks: Iterable[Network], allocations: Iterable[Allocation]) -> None:
        self.table = NameTable.of(allocations)
        self._wanted = {n.gateway for n in networks}

    def servers_for(self, network: Network) -> list[str]:
        """The DNS servers for containers on ``network``: its gateway (when powerstrip serves there),
        then the upstreams a container can reach itself, which Docker's DNS falls back to while
        powerstrip is down (so names outside the cluster still resolve); empty when not serving."""
        if network.gateway not in self._endpoints:
            return []
        return [str(network.gateway)] + [u for u in self.upstreams if not IPv4Address(u).is_loopback]

    async def listen(self) -> None:
        """Open sockets for new gateways, close those of networks that are gone."""
        wanted = self._wanted
        for address in set(self._endpoints) - wanted:
            self._endpoints.pop(address).close()
        loop = asyncio.get_running_loop()
        for address in wanted - set(self._endpoints):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
                sock.bind((str(address), self.port))
            except OSError as exc:
                sock.close()
                if address not in self._failed:
                    self._failed.add(address)
                    log.warning("net: cannot serve names on %s:%d (%s): names resolve per host only", address,
                                self.port, exc)
                continue
            transport, _ = await loop.create_datagram_endpoint(lambda: _Responder(self), sock=sock)
            self._endpoints[address] = transport  # type: ignore[assignment]

    def close(self) -> None:
        for transport in self._endpoints.values():
            transport.close()
        self._endpoints.clear()

    async def answer(self, wire: bytes, source: IPv4Address) -> bytes | None:
        """The reply to one query (``None``: not a query, dropped)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if query.flags & dns.flags.QR or len(query.question) != 1:
            return None
        question = query.question[0]
        found = self.table.lookup(source, question.name.to_text()) if question.rdclass == dns.rdataclass.IN else None
        if found is not None:
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.AA | dns.flags.RA
            if question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
                reply.answer.append(dns.rrset.from_text(question.name, TTL, "IN", "A", str(found)))
            return reply.to_wire()  # AAAA and others: the name exists, with no such record
        return await self._forward(query)

    async def _forward(self, query: dns.message.Message) -> bytes:
        for upstream in self.upstreams:
            try:
                return (await dns.asyncquery.udp(query, upstream, timeout=FORWARD_TIMEOUT)).to_wire()
            except (dns.exception.DNSException, OSError) as exc:
                log.debug("net: forwarding %s to %s: %s", query.question[0].name, upstream, exc)
        reply = dns.message.make_response(query)
        reply.set_rcode(dns.rcode.SERVFAIL)
        return reply.to_wire()


class _Responder(asyncio.DatagramProtocol):
    def __init__(self, service: NameService) -> None:
        self.service = service
        self.transport: asyncio.DatagramTransport | None = None
        self._pending: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._reply(data, addr))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = await self.service.answer(data, IPv4Address(addr[0]))
        except Exception:  # noqa: BLE001 - one bad query must not stop the service
            log.exception("net: answering a DNS query from %s", addr[0])
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

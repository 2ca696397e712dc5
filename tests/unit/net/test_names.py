"""The name table and the DNS answers (dnspython on both sides; no sockets)."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address

import dns.flags
import dns.message
import dns.rcode

from powerstrip.adapters.net.model import Allocation
from powerstrip.adapters.net.names import NameService, NameTable


def alloc(network: str, address: str, name: str | None) -> Allocation:
    return Allocation(network, IPv4Address(address), f"o-{address}", 0.0, "c", name, "198.18.0.2")


TABLE = [alloc("web", "10.6.0.2", "Web1"), alloc("web", "10.6.0.3", "web2"), alloc("db", "10.7.0.2", "db1"),
         alloc("web", "10.6.0.4", None)]


def test_names_are_per_network_and_case_insensitive() -> None:
    table = NameTable.of(TABLE)
    assert table.lookup(IPv4Address("10.6.0.3"), "WEB1.") == IPv4Address("10.6.0.2")
    assert table.lookup(IPv4Address("10.6.0.2"), "db1") is None  # another network's name
    assert table.lookup(IPv4Address("10.9.9.9"), "web1") is None  # a stranger asks


def ask(service: NameService, name: str, rdtype: str, source: str) -> dns.message.Message:
    wire = asyncio.run(service.answer(dns.message.make_query(name, rdtype).to_wire(), IPv4Address(source)))
    assert wire is not None
    return dns.message.from_wire(wire)


def test_answers_and_forwarding_failure() -> None:
    service = NameService(upstreams=[])  # nowhere to forward to: SERVFAIL, as a resolver that cannot reach its servers
    service.update([], TABLE)
    reply = ask(service, "web2", "A", "10.6.0.2")
    assert reply.flags & dns.flags.AA and [r.to_text() for r in reply.answer[0]] == ["10.6.0.3"]
    assert reply.answer[0].ttl == 2
    empty = ask(service, "web2", "AAAA", "10.6.0.2")
    assert empty.rcode() == dns.rcode.NOERROR and not empty.answer
    assert ask(service, "db1", "A", "10.6.0.2").rcode() == dns.rcode.SERVFAIL  # not on web: forwarded
    assert asyncio.run(service.answer(b"\x00garbage", IPv4Address("10.6.0.2"))) is None

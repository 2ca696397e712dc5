"""Address rules, with no I/O: which ranges are acceptable and which address to hand out next.

Every store implementation picks addresses with ``first_free`` inside its own atomic step, so
the rules are the same whether the state lives in SQLite or in a cluster store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError

from powerstrip.adapters.net.model import Conflict, InvalidInput, Network

# /30 is the smallest range with a gateway and one address for a container; /8 the largest we accept.
MIN_PREFIX, MAX_PREFIX = 8, 30

# Network names also name Docker networks ("ps-NAME"), so they follow Docker's name rules.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid network name {name!r}: use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return name


def parse_cidr(text: str) -> IPv4Network:
    """Parse ``10.0.6.1/24`` style ranges (host bits allowed, as Socketplane users wrote them)."""
    text = text.strip()
    if "/" not in text:
        raise InvalidInput(f"invalid CIDR {text!r}: expected ADDRESS/PREFIX, e.g. 10.0.6.0/24")
    try:
        cidr = IPv4Network(text, strict=False)
    except (AddressValueError, NetmaskValueError, ValueError) as exc:
        raise InvalidInput(f"invalid CIDR {text!r}: {exc}") from None
    if not MIN_PREFIX <= cidr.prefixlen <= MAX_PREFIX:
        raise InvalidInput(f"invalid CIDR {text!r}: the prefix length must be between /{MIN_PREFIX} and /{MAX_PREFIX}")
    address = cidr.network_address
    if address.is_loopback or address.is_multicast or address.is_link_local or address.is_unspecified or address.is_reserved:
        raise InvalidInput(f"invalid CIDR {text!r}: {cidr} is a reserved range")
    return cidr


def gateway_of(cidr: IPv4Network) -> IPv4Address:
    return cidr.network_address + 1


def auto_name(cidr: IPv4Network) -> str:
    """The name of a network created implicitly by ``SOCKETPLANE_CIDR``: ``10.0.6.0/24`` → ``10.0.6.0-24``."""
    return f"{cidr.network_address}-{cidr.prefixlen}"


def find_overlap(cidr: IPv4Network, networks: Iterable[Network]) -> Network | None:
    return next((n for n in networks if n.cidr.overlaps(cidr)), None)


def admit_network(name: str, cidr: IPv4Network, existing: list[Network], exist_ok: bool) -> Network | None:
    """May network ``name`` on ``cidr`` join ``existing``? None: yes, add it. A network: it is already
    there (``exist_ok`` and the same range). ``Conflict`` otherwise: the same rules for every store."""
    same_name = next((n for n in existing if n.name == name), None)
    if same_name is not None:
        if exist_ok and same_name.cidr == cidr:
            return same_name
        raise Conflict(f"network {name} already exists ({same_name.cidr})")
    overlap = find_overlap(cidr, existing)
    if overlap is not None:
        raise Conflict(f"{cidr} overlaps network {overlap.name} ({overlap.cidr})")
    return None


def first_free(network: Network, taken: set[IPv4Address]) -> IPv4Address:
    """The lowest host address that is neither the gateway nor taken; refuses a full network."""
    return lowest_free(network, taken, 1)[0]


def lowest_free(network: Network, taken: set[IPv4Address], count: int) -> list[IPv4Address]:
    """Up to ``count`` of the lowest free host addresses (at least one); refuses a full network."""
    found: list[IPv4Address] = []
    for address in network.cidr.hosts():  # hosts() leaves out the network and broadcast addresses
        if address != network.gateway and address not in taken:
            found.append(address)
            if len(found) == count:
                return found
    if found:
        return found
    capacity = network.cidr.num_addresses - 3
    raise Conflict(f"network {network.name} ({network.cidr}) is full: all {capacity} addresses are in use")

from ipaddress import IPv4Address, IPv4Network

import pytest

from powerstrip.adapters.net import ipam
from powerstrip.adapters.net.model import Conflict, InvalidInput, Network


def net(cidr: str, name: str = "n") -> Network:
    network = IPv4Network(cidr)
    return Network(name, network, ipam.gateway_of(network))


def test_parse_cidr_accepts_host_bits_as_socketplane_users_wrote_them() -> None:
    assert ipam.parse_cidr("10.0.6.1/24") == IPv4Network("10.0.6.0/24")
    assert ipam.parse_cidr(" 10.6.0.0/16 ") == IPv4Network("10.6.0.0/16")


@pytest.mark.parametrize(
    "text, reason",
    [
        ("10.0.6.0", "expected ADDRESS/PREFIX"),
        ("10.0.6.300/24", "invalid CIDR"),
        ("10.0.6.0/33", "invalid CIDR"),
        ("bogus/24", "invalid CIDR"),
        ("10.0.6.0/31", "between /8 and /30"),
        ("10.0.0.0/7", "between /8 and /30"),
        ("127.0.0.0/8", "reserved"),
        ("224.0.0.0/24", "reserved"),
        ("169.254.0.0/16", "reserved"),
    ],
)
def test_parse_cidr_refuses_with_a_clear_message(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as caught:
        ipam.parse_cidr(text)
    assert caught.value.status == 400
    assert text.strip() in caught.value.message


@pytest.mark.parametrize("name", ["default", "web", "10.0.6.0-24", "a_b.c"])
def test_check_name_accepts_docker_compatible_names(name: str) -> None:
    assert ipam.check_name(name) == name


@pytest.mark.parametrize("name", ["", "-web", "web/1", "a b", "x" * 64])
def test_check_name_refuses_others(name: str) -> None:
    with pytest.raises(InvalidInput, match="invalid network name"):
        ipam.check_name(name)


def test_gateway_is_the_first_host_and_auto_name_is_docker_safe() -> None:
    cidr = IPv4Network("10.0.6.0/24")
    assert ipam.gateway_of(cidr) == IPv4Address("10.0.6.1")
    assert ipam.auto_name(cidr) == "10.0.6.0-24"
    ipam.check_name(ipam.auto_name(cidr))


def test_first_free_skips_gateway_and_taken_addresses() -> None:
    n = net("10.0.6.0/24")
    assert ipam.first_free(n, set()) == IPv4Address("10.0.6.2")
    taken = {IPv4Address("10.0.6.2"), IPv4Address("10.0.6.4")}
    assert ipam.first_free(n, taken) == IPv4Address("10.0.6.3")


def test_first_free_never_hands_out_network_or_broadcast_and_refuses_a_full_network() -> None:
    n = net("10.0.6.0/29", "small")  # .0 network, .1 gateway, .2-.6 free, .7 broadcast
    taken: set[IPv4Address] = set()
    for _ in range(5):
        taken.add(ipam.first_free(n, taken))
    assert taken == {IPv4Address(f"10.0.6.{i}") for i in range(2, 7)}
    with pytest.raises(Conflict, match=r"network small \(10.0.6.0/29\) is full: all 5 addresses are in use"):
        ipam.first_free(n, taken)


def test_find_overlap() -> None:
    existing = [net("10.1.0.0/16", "default"), net("10.0.6.0/24", "web")]
    assert ipam.find_overlap(IPv4Network("10.0.6.128/25"), existing).name == "web"  # type: ignore[union-attr]
    assert ipam.find_overlap(IPv4Network("10.0.0.0/8"), existing).name == "default"  # type: ignore[union-attr]
    assert ipam.find_overlap(IPv4Network("10.0.7.0/24"), existing) is None

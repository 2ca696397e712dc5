"""Policy documents: what is accepted, how it is normalised, and every refusal's message."""

from __future__ import annotations

import json
from ipaddress import IPv4Network

import pytest

from powerstrip.adapters.net.model import Conflict, InvalidInput, Network
from powerstrip.adapters.qos.policy import check_conflicts, describe_action, describe_match, from_json, parse_policy
from powerstrip.adapters.qos.service import check_networks

NETWORKS = [Network("web", IPv4Network("10.0.6.0/24"), IPv4Network("10.0.6.0/24")[1]),
            Network("default", IPv4Network("10.1.0.0/16"), IPv4Network("10.1.0.0/16")[1])]


def policy(**doc):
    return parse_policy(json.dumps(doc))


def test_the_issues_examples_parse() -> None:
    limit = policy(name="limit-h1", **{"ip-src": "10.0.6.2"}, rate="2mbit")
    assert limit.match.ip_src == IPv4Network("10.0.6.2/32") and limit.rate.bits == 2_000_000 and limit.dscp is None
    voice = policy(name="voice", **{"ip-dst": "10.0.6.0/24", "protocol": "udp", "tp-dst": 5060}, dscp="EF")
    assert (voice.match.protocol, voice.match.tp_dst, voice.dscp, voice.rate) == (17, 5060, 46, None)
    assert describe_match(voice.match) == "ip-dst=10.0.6.0/24 protocol=udp tp-dst=5060"
    assert describe_action(voice) == "dscp=EF" and describe_action(limit) == "rate=2mbit"


@pytest.mark.parametrize("text,bits", [("2mbit", 2_000_000), ("512kbit", 512_000), ("1.5gbit", 1_500_000_000),
                                       ("8000bit", 8000), (" 10MBIT ", 10_000_000)])
def test_rates_in_tcs_units(text: str, bits: int) -> None:
    assert policy(name="p", rate=text).rate.bits == bits


@pytest.mark.parametrize("burst,size", [(15000, 15000), ("15k", 15360), ("1m", 1048576), ("2000b", 2000)])
def test_bursts(burst: object, size: int) -> None:
    assert policy(name="p", rate="2mbit", burst=burst).burst == size


@pytest.mark.parametrize("dscp,value", [("EF", 46), ("af41", 34), ("CS1", 8), (0, 0), ("63", 63), ("BE", 0)])
def test_dscp_names_and_numbers(dscp: object, value: int) -> None:
    assert policy(name="p", dscp=dscp).dscp == value


def test_protocol_numbers_and_names() -> None:
    assert policy(name="p", protocol="icmp", dscp=1).match.protocol == 1
    assert policy(name="p", protocol=47, dscp=1).match.protocol == 47
    assert policy(name="p", protocol="TCP", **{"tp-src": "80"}, dscp=1).match.tp_src == 80


@pytest.mark.parametrize("doc,message", [
    ("[1]", "expected a JSON object"),
    ("{", "not JSON"),
    ('{"name": "p", "rate": "2mbit", "queue": 1}', "unknown field(s) queue"),
    ('{"rate": "2mbit"}', '"name" must be'),
    ('{"name": "-x", "rate": "2mbit"}', '"name" must be'),
    ('{"name": "p"}', "no action"),
    ('{"name": "p", "rate": "2mb"}', "invalid rate '2mb'"),
    ('{"name": "p", "rate": "2 mbps"}', "invalid rate"),
    ('{"name": "p", "rate": 2000000}', "expected a string"),
    ('{"name": "p", "rate": "1bit"}', "between 8kbit and 40gbit"),
    ('{"name": "p", "rate": "100gbit"}', "between 8kbit and 40gbit"),
    ('{"name": "p", "rate": "2mbit", "burst": "10q"}', "invalid burst"),
    ('{"name": "p", "rate": "2mbit", "burst": 100}', "between 1600 bytes"),
    ('{"name": "p", "burst": 15000, "dscp": 1}', '"burst" needs a "rate"'),
    ('{"name": "p", "dscp": 64}', "invalid dscp 64"),
    ('{"name": "p", "dscp": "XX"}', "invalid dscp"),
    ('{"name": "p", "dscp": true}', "invalid dscp"),
    ('{"name": "p", "ip-src": "10.0.6", "rate": "2mbit"}', "invalid ip-src '10.0.6'"),
    ('{"name": "p", "ip-src": "10.0.6.1/24", "rate": "2mbit"}', "host bits set (did you mean 10.0.6.0/24 or 10.0.6.1?)"),
    ('{"name": "p", "ip-dst": 10, "rate": "2mbit"}', "invalid ip-dst 10"),
    ('{"name": "p", "ip-dst": "fe80::1", "rate": "2mbit"}', "expected an IPv4 address"),
    ('{"name": "p", "protocol": "sctpx", "dscp": 1}', "invalid protocol 'sctpx'"),
    ('{"name": "p", "protocol": 256, "dscp": 1}', "invalid protocol 256"),
    ('{"name": "p", "tp-dst": 80, "dscp": 1}', 'need "protocol": "tcp" or "udp"'),
    ('{"name": "p", "protocol": "icmp", "tp-dst": 80, "dscp": 1}', 'need "protocol"'),
    ('{"name": "p", "protocol": "tcp", "tp-dst": 0, "dscp": 1}', "invalid tp-dst 0"),
    ('{"name": "p", "protocol": "tcp", "tp-src": 70000, "dscp": 1}', "invalid tp-src 70000"),
    ('{"name": "p", "network": "a b", "dscp": 1}', '"network" must be a network name'),
])
def test_bad_input_is_refused_with_a_message(doc: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_policy(doc)
    assert message in refused.value.message


def test_addresses_must_be_on_a_powerstrip_network() -> None:
    check_networks(policy(name="p", **{"ip-src": "10.0.6.2"}, rate="2mbit"), NETWORKS)
    with pytest.raises(InvalidInput, match=r"ip-dst 192.168.0.0/24 is not on a powerstrip network \(web 10.0.6.0/24"):
        check_networks(policy(name="p", **{"ip-dst": "192.168.0.0/24"}, rate="2mbit"), NETWORKS)
    with pytest.raises(InvalidInput, match="ip-src 10.1.0.5 is not on network web"):
        check_networks(policy(name="p", **{"ip-src": "10.1.0.5"}, network="web", rate="2mbit"), NETWORKS)
    with pytest.raises(InvalidInput, match="network db not found"):
        check_networks(policy(name="p", network="db", rate="2mbit"), NETWORKS)
    with pytest.raises(InvalidInput, match="ip-dst 10.0.0.0/8 is not on"):  # wider than any network
        check_networks(policy(name="p", **{"ip-dst": "10.0.0.0/8"}, rate="2mbit"), NETWORKS)


def test_conflicts_overlapping_matches_with_different_actions() -> None:
    limit = policy(name="limit-h1", **{"ip-src": "10.0.6.2"}, rate="2mbit")
    existing = [limit, policy(name="voice", **{"ip-dst": "10.0.6.0/24", "protocol": "udp", "tp-dst": 5060}, dscp="EF")]
    with pytest.raises(Conflict, match="policy limit-h1 already exists"):
        check_conflicts(policy(name="limit-h1", **{"ip-src": "10.0.6.9"}, rate="1mbit"), existing)
    with pytest.raises(Conflict, match=r"overlaps policy limit-h1 \(ip-src=10.0.6.2\) with a rate on what the same containers send"):
        check_conflicts(policy(name="all", **{"ip-src": "10.0.6.0/24"}, rate="5mbit"), existing)
    with pytest.raises(Conflict, match="with a rate on what the same containers send"):  # equal rates too
        check_conflicts(policy(name="same", **{"ip-src": "10.0.6.0/30"}, rate="2mbit"), existing)
    with pytest.raises(Conflict, match="with a rate on what the same containers receive"):
        check_conflicts(policy(name="in2", **{"ip-dst": "10.0.6.0/24"}, rate="2mbit"),
                        [policy(name="in1", **{"ip-dst": "10.0.6.3"}, protocol="tcp", rate="9mbit")])
    with pytest.raises(Conflict, match="overlaps policy voice .* with a different dscp"):
        check_conflicts(policy(name="sip", protocol="udp", dscp="AF41"), existing)
    # Disjoint matches, the same action, or actions of different kinds: accepted.
    check_conflicts(policy(name="h2", **{"ip-src": "10.0.6.3"}, rate="5mbit"), existing)
    check_conflicts(policy(name="tcp", **{"ip-src": "10.0.6.0/24"}, protocol="tcp", dscp="CS1"), existing)
    check_conflicts(policy(name="to-h3", **{"ip-dst": "10.0.6.4"}, rate="1mbit"), existing)  # received vs sent: both hold
    check_conflicts(policy(name="ef-too", **{"ip-dst": "10.0.6.9"}, protocol="udp", dscp="EF"), existing)  # same mark
    check_conflicts(policy(name="rtp", protocol="udp", **{"tp-dst": 5004}, dscp="AF41"), existing)
    check_conflicts(policy(name="other-net", network="default", rate="1mbit"),
                    [policy(name="web", network="web", rate="2mbit")])


def test_stored_form_round_trips_with_the_owner() -> None:
    p = policy(name="voice", **{"ip-dst": "10.0.6.0/24", "protocol": "udp", "tp-dst": 5060}, rate="1.5mbit",
               burst="15k", dscp="EF")
    assert from_json(p.to_json()) == p
    owned = parse_policy(json.dumps({"name": "c1", "ip-src": "10.0.6.2", "rate": "2mbit"}))
    from dataclasses import replace
    owned = replace(owned, owner="ps-net-abc")
    assert from_json(owned.to_json()).owner == "ps-net-abc"
    assert "owner" not in owned.document()


def test_internal_fields_survive_the_store_and_users_cannot_set_them() -> None:
    from dataclasses import replace

    made = replace(parse_policy('{"name": "hostaware-slow-h1", "rate": "2mbit"}'), host="198.18.0.2", rule="slow")
    assert from_json(made.to_json()) == made and made.describe_owner() == "rule slow on 198.18.0.2"
    for field in ("host", "rule", "owner"):
        with pytest.raises(InvalidInput, match="unknown field"):
            parse_policy(json.dumps({"name": "x", "rate": "2mbit", field: "y"}))

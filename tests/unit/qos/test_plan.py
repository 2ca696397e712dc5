"""The tc plan: which container gets which shaper and mark, on which side, with which u32 keys (no sockets)."""

from __future__ import annotations

import json
from ipaddress import IPv4Address

from powerstrip.adapters.qos import tc
from powerstrip.adapters.qos.marks import comment, rule
from powerstrip.adapters.qos.plan import Endpoint, default_burst, iptables_match, plan, u32_keys
from powerstrip.adapters.qos.policy import parse_policy

H1 = Endpoint("ps-net-1", "h1", "web", IPv4Address("10.0.6.2"))
H2 = Endpoint("ps-net-2", "h2", "web", IPv4Address("10.0.6.3"))
D1 = Endpoint("ps-net-3", "d1", "default", IPv4Address("10.1.0.2"))


def policy(**doc):
    return parse_policy(json.dumps(doc))


LIMIT = policy(name="limit-h1", **{"ip-src": "10.0.6.2"}, rate="2mbit")
VOICE = policy(name="voice", **{"ip-dst": "10.0.6.0/24", "protocol": "udp", "tp-dst": 5060}, dscp="EF")


def test_an_ip_src_rate_shapes_what_that_container_sends_and_nothing_else() -> None:
    p1 = plan(H1, [LIMIT])
    (shaper,) = p1.egress
    assert (shaper.policy, shaper.minor, shaper.rate, shaper.burst) == ("limit-h1", 1, 2_000_000, default_burst(2_000_000))
    assert shaper.keys == ("0x0a000602/0xffffffff+12",)
    assert p1.ingress == () and p1.marks == () and p1.placements() == {"limit-h1": "container"}
    assert plan(H2, [LIMIT]).placements() == {}  # the other container (and the reverse direction) untouched


def test_an_ip_dst_rate_shapes_what_the_container_receives_on_the_host_side() -> None:
    inbound = policy(name="to-h2", **{"ip-dst": "10.0.6.3"}, protocol="tcp", rate="10mbit", burst=20000)
    p2 = plan(H2, [inbound])
    assert p2.egress == () and [s.burst for s in p2.ingress] == [20000] and p2.placements() == {"to-h2": "host"}
    assert p2.ingress[0].keys == ("0x00060000/0x00ff0000+8", "0x0a000603/0xffffffff+16")
    assert plan(H1, [inbound]).placements() == {}


def test_dscp_marks_what_matching_senders_send() -> None:
    for endpoint in (H1, H2, D1):  # no ip-src: every sender; the match narrows it to the voice traffic
        (mark,) = plan(endpoint, [VOICE]).marks
        assert (mark.policy, mark.dscp) == ("voice", 46)
        assert mark.match == ("-o", "eth0", "-d", "10.0.6.0/24", "-p", "udp", "--dport", "5060")
    assert rule(mark)[-6:] == ["--comment", comment(mark), "-j", "DSCP", "--set-dscp", "46"]


def test_network_field_and_several_policies_number_the_classes() -> None:
    web_only = policy(name="a-web", network="web", rate="1mbit")
    both = plan(H1, [LIMIT, web_only, VOICE])
    assert [(s.policy, s.minor) for s in both.egress] == [("a-web", 1), ("limit-h1", 2)]
    assert both.placements() == {"a-web": "container", "limit-h1": "container", "voice": "container"}
    assert plan(D1, [web_only]).placements() == {}
    assert plan(H1, [policy(name="x", rate="1mbit", dscp=8, **{"ip-src": "10.0.6.2"})]).placements() == {"x": "container"}


def test_u32_keys_for_ports_check_the_header_length() -> None:
    sip = policy(name="s", protocol="udp", **{"tp-src": 5060, "tp-dst": 5061, "ip-dst": "10.0.6.0/24"}, dscp=1).match
    assert u32_keys(sip) == ("0x05000000/0x0f000000+0", "0x00110000/0x00ff0000+8",
                             "0x0a000600/0xffffff00+16", "0x13c413c5/0xffffffff+20")
    assert u32_keys(policy(name="d", protocol="tcp", **{"tp-dst": 80}, dscp=1).match)[-1] == "0x00000050/0x0000ffff+20"
    assert u32_keys(policy(name="all", rate="1mbit").match) == ("0x0/0x0+0",)
    assert iptables_match(policy(name="g", protocol=47, dscp=1).match) == ("-o", "eth0", "-p", "47")


def test_what_tc_compares_is_byte_exact() -> None:
    # The kernel reports keys regrouped by pyroute2 (e.g. the protocol byte as a word at offset 9):
    # the comparison is on the bytes each key constrains, so both forms are the same tree.
    ours = tc._key_bytes(("0x00060000/0x00ff0000+8", "0x0a000602/0xffffffff+12"))
    assert ours == frozenset({(9, 6, 0xFF), (12, 10, 0xFF), (13, 0, 0xFF), (14, 6, 0xFF), (15, 2, 0xFF)})
    kernel = frozenset(tc._bytes(9, 0x0600000A, 0xFF0000FF)) | frozenset(tc._bytes(13, 0x00060200, 0xFFFFFF00))
    assert kernel == ours
    assert tc._key_bytes(("0x0/0x0+0",)) == frozenset()
    want = tc.wanted(plan(H1, [LIMIT]).egress)
    assert want.ours and {c[:2] for c in want.classes} == {(1, 250_000)} and {f[:2] for f in want.filters} == {(1, tc.ROOT | 1)}
    assert tc.wanted(()) == tc.Tree(False, None, frozenset(), frozenset())


def test_a_policy_restricted_to_a_host_matches_only_that_hosts_containers() -> None:
    from dataclasses import replace

    on_a = replace(policy(name="hostaware-slow-a", rate="2mbit"), host="198.18.0.2", rule="slow")
    a = Endpoint("ps-net-1", "h1", "web", IPv4Address("10.0.6.2"), "198.18.0.2")
    b = Endpoint("ps-net-2", "h2", "web", IPv4Address("10.0.6.3"), "198.18.0.3")
    assert plan(a, [on_a]).placements() == {"hostaware-slow-a": "container"}
    assert plan(b, [on_a]).placements() == {}
    on_b = replace(on_a, name="hostaware-slow-b", host="198.18.0.3")
    assert on_a.conflicts_with(on_b) is None  # the same rule on two hosts: never on one container
    assert on_a.conflicts_with(policy(name="all", rate="5mbit")) is not None

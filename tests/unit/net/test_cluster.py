"""Cluster settings and the overlay's naming rules (no I/O)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from powerstrip.adapters.net.cluster import cluster_settings, parse_endpoints
from powerstrip.adapters.net.model import InvalidInput
from powerstrip.adapters.net.overlay import bridge_name, container_mac, gateway_mac, vxlan_name


def test_endpoints_several_and_default_port() -> None:
    assert parse_endpoints("etcd://198.18.0.1:2379,198.18.0.2,etcd.example:4001") == (
        ("198.18.0.1", 2379), ("198.18.0.2", 2379), ("etcd.example", 4001))


@pytest.mark.parametrize("url", ["198.18.0.1:2379", "http://198.18.0.1:2379", "etcd://", "etcd://h:port", "etcd://:2379"])
def test_bad_cluster_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        parse_endpoints(url)


def test_advertise_and_mtu_are_checked() -> None:
    settings = cluster_settings("etcd://198.18.0.1:2379", advertise="198.18.0.7", mtu=1400)
    assert (settings.advertise, settings.mtu, settings.url) == ("198.18.0.7", 1400, "etcd://198.18.0.1:2379")
    with pytest.raises(InvalidInput, match="underlay address"):
        cluster_settings("etcd://198.18.0.1:2379", advertise="not-an-address")
    with pytest.raises(InvalidInput, match="MTU"):
        cluster_settings("etcd://198.18.0.1:2379", advertise="198.18.0.7", mtu=100)


def test_advertise_defaults_to_the_route_source() -> None:
    assert cluster_settings("etcd://127.0.0.1:2379").advertise == "127.0.0.1"


def test_names_and_macs() -> None:
    assert (bridge_name(4096), vxlan_name(16777215)) == ("psbr4096", "psvx16777215")
    assert len(vxlan_name(16777215)) <= 15  # IFNAMSIZ
    assert gateway_mac(IPv4Address("10.6.0.1")) == "02:50:0a:06:00:01"
    assert container_mac(IPv4Address("10.6.0.2")) == "02:42:0a:06:00:02"


def test_secured_store_options_are_checked_as_etcdctl_would() -> None:
    secured = cluster_settings("etcds://198.18.0.1:2379", advertise="198.18.0.7", cacert="ca.pem", cert="c.pem",
                               key="k.pem", user="ps:pw:with:colons")
    assert secured.url == "etcds://198.18.0.1:2379"
    assert secured.tls is not None and (secured.tls.cacert, secured.tls.cert, secured.tls.key) == ("ca.pem", "c.pem", "k.pem")
    assert secured.credentials is not None and secured.credentials.user == "ps"
    assert secured.credentials.password == "pw:with:colons" and "pw" not in repr(secured.credentials)
    separate = cluster_settings("etcd://198.18.0.1:2379", advertise="198.18.0.7", user="ps", password="pw")
    assert separate.tls is None and separate.credentials is not None and separate.credentials.password == "pw"
    for bad, message in (({"cacert": "ca.pem"}, "need an etcds://"), ({"user": "ps"}, "needs a password"),
                         ({"password": "pw"}, "needs --cluster-user")):
        with pytest.raises(InvalidInput, match=message):
            cluster_settings("etcd://198.18.0.1:2379", advertise="198.18.0.7", **bad)
    with pytest.raises(InvalidInput, match="go together"):
        cluster_settings("etcds://198.18.0.1:2379", advertise="198.18.0.7", cert="c.pem")
    with pytest.raises(InvalidInput, match="lost host grace"):
        cluster_settings("etcd://198.18.0.1:2379", advertise="198.18.0.7", lost_host_grace=-1)
    with pytest.raises(InvalidInput, match="DNS server"):
        cluster_settings("etcd://198.18.0.1:2379", advertise="198.18.0.7", dns_upstreams=("resolver.example",))
    with pytest.raises(InvalidInput, match="gateway URL"):
        cluster_settings("etcd://198.18.0.1:2379", advertise="198.18.0.7", gateway="http://x")

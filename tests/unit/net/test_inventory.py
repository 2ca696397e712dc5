"""The inventory document's shape (Ansible's dynamic inventory protocol), from store records and Docker facts."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from powerstrip.adapters.net.inventory import (
    ClusterHost, ContainerFacts, InventorySource, build, group_name, host_variables, unreachable,
)
from powerstrip.adapters.net.model import Allocation, Network

WEB = Network("web-1.a", IPv4Network("10.6.0.0/16"), IPv4Address("10.6.0.1"), vni=4096)


def alloc(owner: str, address: str, container: str | None, name: str | None, host: str | None) -> Allocation:
    return Allocation(WEB.name, IPv4Address(address), owner, 0.0, container, name, host)


def test_group_names_are_identifiers() -> None:
    assert group_name("net", "web-1.a") == "net_web_1_a"
    assert group_name("label", "com.example/tier", "front end") == "label_com_example_tier_front_end"


def test_hosts_containers_networks_and_labels() -> None:
    source = InventorySource(
        hosts=[ClusterHost("198.18.0.2", "tcp://198.18.0.2:2375"), ClusterHost("198.18.0.3")],
        networks=[WEB, Network("empty", IPv4Network("10.9.0.0/24"), IPv4Address("10.9.0.1"))],
        allocations=[alloc("o1", "10.6.0.2", "c1", "a", "198.18.0.2"), alloc("o2", "10.6.0.3", "c2", "a", "198.18.0.3"),
                     alloc("o3", "10.6.0.4", "c3", "b", "198.18.0.2"), alloc("o4", "10.6.0.5", None, None, "198.18.0.2")],
        gateways={"198.18.0.2": "tcp://198.18.0.2:2375", "198.18.0.3": None},
        facts={"c3": ContainerFacts("renamed", {"tier": "front"}, "running")},
    )
    doc = build(source)
    assert doc["powerstrip_hosts"]["hosts"] == ["198.18.0.2", "198.18.0.3"]
    # two hosts run an "a": both qualified by host; a renamed container goes by its current name; a
    # pending allocation (no container yet) is not a host
    assert doc["net_web_1_a"]["hosts"] == ["a@198.18.0.2", "a@198.18.0.3", "renamed"]
    assert doc["net_empty"]["hosts"] == []
    assert doc["label_tier_front"]["hosts"] == ["renamed"]
    assert set(doc["all"]["children"]) >= {"net_web_1_a", "label_tier_front", "powerstrip_hosts", "ungrouped"}
    renamed = doc["_meta"]["hostvars"]["renamed"]
    assert renamed["ansible_connection"] == "docker" and renamed["ansible_host"] == "c3"
    assert renamed["ansible_docker_extra_args"] == "-H tcp://198.18.0.2:2375"
    assert renamed["powerstrip_ip"] == "10.6.0.4" and renamed["powerstrip_state"] == "running"
    no_gateway = doc["_meta"]["hostvars"]["a@198.18.0.3"]
    assert "ansible_docker_extra_args" not in no_gateway and no_gateway["powerstrip_state"] == "unknown"
    assert list(unreachable(source)) == ["198.18.0.3"]
    assert host_variables(doc, "renamed") == renamed and host_variables(doc, "nosuch") == {}

"""An Ansible dynamic inventory of the cluster: its hosts, and the containers on powerstrip networks.

Ansible runs an inventory script with ``--list`` and expects one JSON document: groups (each with
``hosts``, ``children``, ``vars``) and ``_meta.hostvars`` with every host's variables (so it never
needs ``--host``). This module only shapes that document from what was read elsewhere (the state
store and each host's Docker API); gathering it is the CLI's job.

- Cluster members are hosts named by their underlay address (``ansible_host`` = that address), in
  the group ``powerstrip_hosts``.
- Every container with an address on a powerstrip network is a host named by its container name
  (``NAME@HOST`` when two hosts run containers of the same name), in ``net_NETWORK``, in
  ``label_KEY_VALUE`` for each of its labels, and in ``powerstrip_containers``. It uses Ansible's
  docker connection (``ansible_connection: docker``) through the powerstrip gateway of its host
  (``ansible_docker_extra_args: -H URL``), so every ``docker exec`` Ansible runs passes the
  gateway's hooks (policy, audit) like any other client's.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from powerstrip.adapters.net.model import Allocation, Network

HOSTS_GROUP = "powerstrip_hosts"
CONTAINERS_GROUP = "powerstrip_containers"
_INVALID = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True, slots=True)
class ClusterHost:
    """A member of the cluster as the inventory shows it."""

    address: str
    gateway: str | None = None  # the Docker API URL of its powerstrip gateway, when it advertises one
    variables: Mapping[str, Any] = field(default_factory=dict)  # more hostvars (e.g. joined, metrics)


@dataclass(frozen=True, slots=True)
class ContainerFacts:
    """What the Docker API of a container's host says about it (its current name, labels and state)."""

    name: str
    labels: Mapping[str, str]
    state: str


@dataclass(frozen=True, slots=True)
class InventorySource:
    """Everything the inventory is made of, already read.

    ``gateways`` maps a host (underlay address; ``None`` on a single host) to the gateway URL that
    Ansible's docker connection goes through for that host's containers; ``facts`` maps container
    IDs to what their daemon said about them (missing when the daemon could not be asked).
    """

    hosts: list[ClusterHost]
    networks: list[Network]
    allocations: list[Allocation]
    gateways: Mapping[str | None, str | None]
    facts: Mapping[str, ContainerFacts]


def group_name(prefix: str, *parts: str) -> str:
    """An Ansible group name: letters, digits and ``_`` only (Ansible warns about anything else)."""
    return _INVALID.sub("_", "_".join((prefix, *parts)))


def build(source: InventorySource) -> dict[str, Any]:
    """The ``--list`` document."""
    groups: defaultdict[str, list[str]] = defaultdict(list)
    hostvars: dict[str, dict[str, Any]] = {}
    for host in source.hosts:
        groups[HOSTS_GROUP].append(host.address)
        hostvars[host.address] = {"ansible_host": host.address, "powerstrip_gateway": host.gateway, **host.variables}
    known = {n.name for n in source.networks}
    bound = [a for a in source.allocations if a.container and a.network in known]
    names = {a.owner: _container_name(a, source.facts) for a in bound}
    clashes = Counter(names.values())
    for allocation in bound:
        assert allocation.container is not None
        name = names[allocation.owner]
        if clashes[name] > 1:
            name = f"{name}@{allocation.host}"
        facts = source.facts.get(allocation.container)
        gateway = source.gateways.get(allocation.host)
        variables: dict[str, Any] = {
            "ansible_connection": "docker",
            "ansible_host": allocation.container,
            "powerstrip_container_id": allocation.container,
            "powerstrip_network": allocation.network,
            "powerstrip_ip": str(allocation.address),
            "powerstrip_host": allocation.host,
            "powerstrip_gateway": gateway,
            "powerstrip_labels": dict(facts.labels) if facts else {},
            "powerstrip_state": facts.state if facts else "unknown",
        }
        if gateway:
            variables["ansible_docker_extra_args"] = f"-H {gateway}"
        hostvars[name] = variables
        groups[CONTAINERS_GROUP].append(name)
        groups[group_name("net", allocation.network)].append(name)
        for key, value in sorted((facts.labels if facts else {}).items()):
            groups[group_name("label", key, value)].append(name)
    for network in source.networks:
        groups.setdefault(group_name("net", network.name), [])
    document: dict[str, Any] = {
        group: {"hosts": sorted(members)} for group, members in sorted(groups.items())
    }
    document["all"] = {"children": sorted(["ungrouped", *groups])}
    document["_meta"] = {"hostvars": hostvars}
    return document


def host_variables(document: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``--host NAME``: that host's variables, ``{}`` for a host the inventory does not have (Ansible's rule)."""
    return dict(document["_meta"]["hostvars"].get(name, {}))


def _container_name(allocation: Allocation, facts: Mapping[str, ContainerFacts]) -> str:
    """The container's current name (its daemon knows renames), else the one it was created with, else its ID."""
    found = facts.get(allocation.container or "")
    if found is not None and found.name:
        return found.name
    return allocation.container_name or (allocation.container or allocation.owner)[:12]


def unreachable(source: InventorySource) -> Iterable[str]:
    """Hosts whose containers are listed without a gateway (Ansible cannot reach them)."""
    hosts = {a.host for a in source.allocations if a.container}
    return sorted(str(h) for h in hosts if not source.gateways.get(h))

"""The QoS operations the CLI and the gateway share: open the stores, add (checked) and delete policies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from powerstrip.adapters.net.cluster import ClusterSettings
from powerstrip.adapters.net.model import InvalidInput, Network
from powerstrip.adapters.net.networks import STATE_FILE, VirtualNetworks, open_networks
from powerstrip.adapters.qos.engine import Engine
from powerstrip.adapters.qos.policy import Policy, net_text
from powerstrip.adapters.qos.store import EtcdPolicies, PolicyStore, SqlitePolicies


@dataclass(frozen=True, slots=True)
class Qos:
    networks: VirtualNetworks
    policies: PolicyStore
    engine: Engine


def open_qos(docker_url: str, state_dir: Path, cluster: ClusterSettings | None = None) -> Qos:
    """Policies in the same store as the networks: ``state_dir``'s SQLite file, or the cluster's etcd."""
    networks = open_networks(docker_url, state_dir, cluster)
    policies: PolicyStore = SqlitePolicies(state_dir / STATE_FILE) if cluster is None else EtcdPolicies(cluster.connect())
    return Qos(networks, policies, Engine(networks, policies))


async def add_policy(qos: Qos, policy: Policy) -> Policy:
    """Store ``policy`` once its addresses and network are known to be powerstrip's."""
    check_networks(policy, await asyncio.to_thread(qos.networks.store.networks))
    return await asyncio.to_thread(qos.policies.add_policy, policy)


def check_networks(policy: Policy, networks: list[Network]) -> None:
    """``network`` must exist; ``ip-src`` and ``ip-dst`` must lie on a powerstrip network (that one, if named)."""
    m = policy.match
    if m.network is not None:
        named = [n for n in networks if n.name == m.network]
        if not named:
            raise InvalidInput(f"invalid policy {policy.name}: network {m.network} not found "
                               "(powerstrip network list shows the networks)")
        networks = named
    for key, net in (("ip-src", m.ip_src), ("ip-dst", m.ip_dst)):
        if net is not None and not any(net.subnet_of(n.cidr) for n in networks):
            known = ", ".join(f"{n.name} {n.cidr}" for n in networks)
            raise InvalidInput(f"invalid policy {policy.name}: {key} {net_text(net)} is not on "
                               f"{'network ' + m.network if m.network else 'a powerstrip network'} ({known})")

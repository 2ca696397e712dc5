"""``powerstrip inventory --list | --host NAME``: the cluster as an Ansible dynamic inventory.

It takes the same ``--docker``, ``--state-dir`` and ``--cluster`` options (and environment defaults)
as ``powerstrip network``, so the command runs as an inventory script as it is; the console script
``powerstrip-inventory`` is the same command for ``ansible -i`` (which wants a path to run).

What it reads: the state store (members, networks, addresses), and each host's Docker API for the
containers' current names, labels and state — this host's daemon through ``--docker``, the other
hosts' through the gateway URL they advertise (``serve --advertise-gateway``). A host that cannot
be asked still has its containers listed (from the store), with a warning on stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import click

from powerstrip.adapters.net import inventory
from powerstrip.adapters.net.cli import run, state_options
from powerstrip.adapters.net.cluster import ClusterSettings
from powerstrip.adapters.net.docker_api import DockerAPI, DockerError
from powerstrip.adapters.net.etcd_store import EtcdStore
from powerstrip.adapters.net.inventory import ClusterHost, ContainerFacts, InventorySource
from powerstrip.adapters.net.networks import VirtualNetworks

FACTS_TIMEOUT = 10.0  # seconds per host's Docker API: Ansible waits for the whole script


@click.command("inventory")
@click.option("--list", "list_", is_flag=True, help="Print every group and host (Ansible calls this).")
@click.option("--host", "host", metavar="NAME", help="Print the variables of one host ({} when unknown).")
@click.option("--gateway", metavar="URL", envvar="POWERSTRIP_GATEWAY",
              help="The gateway Ansible's docker connection goes through for this host's containers "
                   "(env POWERSTRIP_GATEWAY; default: this host's --advertise-gateway, else $DOCKER_HOST).")
@state_options
def inventory_command(list_: bool, host: str | None, gateway: str | None, docker: str, state_dir: Path,
                      cluster: ClusterSettings | None) -> None:
    """An Ansible dynamic inventory: cluster hosts, and containers grouped by network and label."""
    if list_ == (host is not None):
        raise click.UsageError("give exactly one of --list and --host NAME")

    async def gather(networks: VirtualNetworks) -> InventorySource:
        return await _gather(networks, cluster, gateway)

    source = run(docker, state_dir, cluster, gather)
    for missing in inventory.unreachable(source):
        where = "this host" if missing == "None" else f"host {missing}"
        click.echo(f"powerstrip inventory: no gateway known for {where}: its containers are listed without "
                   "ansible_docker_extra_args (give --gateway, or serve --advertise-gateway)", err=True)
    document = inventory.build(source)
    click.echo(json.dumps(document if list_ else inventory.host_variables(document, host or ""), indent=2, sort_keys=True))


async def _gather(networks: VirtualNetworks, cluster: ClusterSettings | None, gateway: str | None) -> InventorySource:
    store = networks.store
    read = await asyncio.to_thread(lambda: (store.networks(), store.allocations()))
    hosts: list[ClusterHost] = []
    gateways: dict[str | None, str | None] = {}
    daemons: dict[str | None, DockerAPI] = {}
    if cluster is None:
        gateways[None] = gateway or os.environ.get("DOCKER_HOST")
        daemons[None] = networks.docker
    else:
        assert isinstance(store, EtcdStore)
        metrics = await asyncio.to_thread(_host_metrics, cluster)
        for member in await asyncio.to_thread(store.members):
            hosts.append(ClusterHost(member.address, member.gateway,
                                     {"powerstrip_joined": member.joined, **metrics.get(member.address, {})}))
            gateways[member.address] = member.gateway
            if member.address == cluster.advertise:
                gateways[member.address] = gateway or member.gateway or os.environ.get("DOCKER_HOST")
                daemons[member.address] = networks.docker
            elif member.gateway:
                daemons[member.address] = DockerAPI(member.gateway, timeout=FACTS_TIMEOUT)
    try:
        found = await asyncio.gather(*(_facts(api) for api in daemons.values()))
    finally:
        await asyncio.gather(*(api.close() for api in daemons.values() if api is not networks.docker))
    facts: dict[str, ContainerFacts] = {}
    for host, (containers, error) in zip(daemons, found):
        if error:
            click.echo(f"powerstrip inventory: containers of {host or 'this host'}: {error}", err=True)
        facts.update(containers)
    return InventorySource(hosts, *read, gateways=gateways, facts=facts)


def _host_metrics(cluster: ClusterSettings) -> dict[str, dict[str, Any]]:
    """Each member's last metrics as the host-aware rules publish them (docs/host-aware.md), as hostvars.

    ``powerstrip_metrics`` (Ganglia's names), and ``powerstrip_metrics_lost`` when the member stopped
    publishing; nothing for a member that never ran the hostaware adapter, or when the store cannot say.
    """
    from powerstrip.adapters.hostaware.store import open_store  # only this command needs the other adapter

    try:
        store = open_store(Path("."), cluster, cluster.advertise)
        try:
            records = store.hosts()
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 - metrics are extra: the inventory stands without them
        click.echo(f"powerstrip inventory: host metrics not read: {exc}", err=True)
        return {}
    return {record.name: {"powerstrip_metrics": dict(record.metrics), "powerstrip_metrics_lost": record.lost,
                          "powerstrip_metrics_source": record.source} for record in records}


async def _facts(api: DockerAPI) -> tuple[dict[str, ContainerFacts], str | None]:
    """The containers a daemon has (by ID), or the reason it could not say."""
    try:
        listed = await api.call("GET", "/containers/json", params={"all": "1"}, timeout=FACTS_TIMEOUT) or []
    except DockerError as exc:
        return {}, exc.message
    return {c["Id"]: ContainerFacts((c.get("Names") or ["/"])[0].lstrip("/"), c.get("Labels") or {},
                                    c.get("State") or "unknown") for c in listed}, None


def main() -> None:
    """The ``powerstrip-inventory`` console script (``ansible -i`` runs a path, not a command line)."""
    inventory_command()

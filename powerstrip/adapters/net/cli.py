"""``powerstrip network ...``, ``powerstrip info CONTAINER`` and ``powerstrip cluster members``.

They talk to the daemon directly (``--docker``) and share the gateway's state (``--state-dir``, or
the cluster store with ``--cluster``). Errors read and exit like the docker CLI's:
``Error response from daemon: ...``, exit status 1.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from powerstrip.adapters.net.attachments import Attachments, Membership
from powerstrip.adapters.net.cluster import DEFAULT_MTU, ClusterSettings, cluster_settings
from powerstrip.adapters.net.converger import LEASE_TTL
from powerstrip.adapters.net.docker_api import DockerError
from powerstrip.adapters.net.etcd_client import Etcd
from powerstrip.adapters.net.etcd_store import EtcdStore
from powerstrip.adapters.net.model import NetError
from powerstrip.adapters.net.networks import VirtualNetworks, open_networks

T = TypeVar("T")


def cluster_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--cluster``, ``--advertise``, ``--advertise-gateway`` and ``--overlay-mtu``, handed to ``command`` as
    ``cluster`` (or ``None``)."""

    @functools.wraps(command)
    def with_cluster(*args: Any, cluster_url: str | None, advertise: str | None, advertise_gateway: str | None,
                     overlay_mtu: int, **kwargs: Any) -> Any:
        try:
            kwargs["cluster"] = (cluster_settings(cluster_url, advertise, overlay_mtu, advertise_gateway)
                                 if cluster_url else None)
        except NetError as exc:
            raise click.BadParameter(exc.message, param_hint="--cluster/--advertise/--overlay-mtu") from None
        return command(*args, **kwargs)

    with_cluster = click.option(
        "--overlay-mtu", default=DEFAULT_MTU, show_default=True, envvar="POWERSTRIP_OVERLAY_MTU",
        help="MTU of multi-host networks (the underlay's MTU minus 50 for VXLAN).",
    )(with_cluster)
    with_cluster = click.option(
        "--advertise-gateway", metavar="URL", envvar="POWERSTRIP_ADVERTISE_GATEWAY",
        help="How other machines reach this host's gateway (tcp://ADDRESS:PORT of a --listen), "
             "recorded with its membership for `powerstrip inventory`.",
    )(with_cluster)
    with_cluster = click.option(
        "--advertise", metavar="ADDRESS", envvar="POWERSTRIP_ADVERTISE",
        help="This host's underlay address (default: the source address of the route to the cluster store).",
    )(with_cluster)
    return click.option(
        "--cluster", "cluster_url", metavar="etcd://HOST:PORT[,HOST:PORT...]", envvar="POWERSTRIP_CLUSTER",
        help="Multi-host networks with their state in this etcd cluster (env POWERSTRIP_CLUSTER).",
    )(with_cluster)


def state_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = cluster_options(command)
    command = click.option(
        "--state-dir",
        envvar="POWERSTRIP_STATE_DIR",
        default=".powerstrip",
        show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="powerstrip's state directory (env POWERSTRIP_STATE_DIR).",
    )(command)
    return click.option(
        "--docker",
        envvar="POWERSTRIP_DOCKER_HOST",
        default="unix:///var/run/docker.sock",
        show_default=True,
        help="The Docker daemon (env POWERSTRIP_DOCKER_HOST).",
    )(command)


def run(docker: str, state_dir: Path, cluster: ClusterSettings | None, action: Callable[[VirtualNetworks], Awaitable[T]]) -> T:
    async def main() -> T:
        networks = open_networks(docker, state_dir, cluster)
        try:
            return await action(networks)
        finally:
            await networks.docker.close()

    try:
        return asyncio.run(main())
    except DockerError as exc:
        fail(exc.message if exc.status == 0 else f"Error response from daemon: {exc.message}")
    except NetError as exc:
        fail(f"Error response from daemon: {exc.message}")


def _read(action: Callable[[], T]) -> T:
    try:
        return action()
    except NetError as exc:
        fail(f"Error response from daemon: {exc.message}")


def fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    raise SystemExit(1)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(header)] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


@click.group("network")
def network() -> None:
    """Manage powerstrip's virtual networks."""


@network.command("create")
@click.argument("name")
@click.argument("cidr")
@state_options
def create(name: str, cidr: str, docker: str, state_dir: Path, cluster: ClusterSettings | None) -> None:
    """Create network NAME with range CIDR (e.g. 10.6.0.0/16); its gateway is the first address."""
    created = run(docker, state_dir, cluster, lambda networks: networks.create(name, cidr))
    click.echo(created.name)


@network.command("list")
@state_options
def list_(docker: str, state_dir: Path, cluster: ClusterSettings | None) -> None:
    """List the networks with their range, gateway and number of containers."""
    store = open_networks(docker, state_dir, cluster).store
    allocations = _read(store.allocations)
    rows = [(n.name, n.cidr, n.gateway, sum(a.network == n.name for a in allocations)) for n in _read(store.networks)]
    click.echo(_table(("NAME", "CIDR", "GATEWAY", "CONTAINERS"), rows))


@network.command("info")
@click.argument("name")
@state_options
def network_info(name: str, docker: str, state_dir: Path, cluster: ClusterSettings | None) -> None:
    """Show network NAME and the containers on it."""
    store = open_networks(docker, state_dir, cluster).store
    found = _read(lambda: store.network(name))
    origin = "SOCKETPLANE_CIDR (goes with its last container)" if found.implicit else "powerstrip network create"
    vni = f"VNI:        {found.vni}\n" if found.vni is not None else ""
    click.echo(f"Name:       {found.name}\nCIDR:       {found.cidr}\nGateway:    {found.gateway}\n{vni}Created by: {origin}\n")
    allocations = _read(lambda: store.allocations(name))
    if cluster is None:
        rows = [(a.container_name or (a.container or "(being created)")[:12], a.address, a.owner) for a in allocations]
        click.echo(_table(("CONTAINER", "IP", "NETWORK-ONLY CONTAINER"), rows))
    else:
        rows = [(a.container_name or (a.container or "(being created)")[:12], a.address, a.host, a.owner) for a in allocations]
        click.echo(_table(("CONTAINER", "IP", "HOST", "NETWORK-ONLY CONTAINER"), rows))


@network.command("delete")
@click.argument("name")
@state_options
def delete(name: str, docker: str, state_dir: Path, cluster: ClusterSettings | None) -> None:
    """Delete network NAME (refused while containers are attached)."""
    click.echo(run(docker, state_dir, cluster, lambda networks: networks.delete(name)).name)


@click.command("info")
@click.argument("container")
@state_options
def info(container: str, docker: str, state_dir: Path, cluster: ClusterSettings | None) -> None:
    """Show a container's virtual network, IP, MAC and gateway."""

    async def describe(networks: VirtualNetworks) -> Membership:
        return await Attachments(networks, networks.docker).membership(container)

    found = run(docker, state_dir, cluster, describe)
    click.echo(
        f"Container: {found.container}\n"
        f"Network:   {found.network.name}\n"
        f"IP:        {found.allocation.address}/{found.network.cidr.prefixlen}\n"
        f"MAC:       {found.mac or '-'}\n"
        f"Gateway:   {found.network.gateway}"
    )


@click.group("cluster")
def cluster_group() -> None:
    """The hosts of a multi-host (etcd) cluster."""


@cluster_group.command("members")
@click.option("--cluster", "cluster_url", metavar="etcd://HOST:PORT[,HOST:PORT...]", envvar="POWERSTRIP_CLUSTER",
              required=True, help="The etcd cluster (env POWERSTRIP_CLUSTER).")
def members(cluster_url: str) -> None:
    """List the hosts: underlay address, health (membership lease) and when they were last seen."""
    try:
        settings = cluster_settings(cluster_url, advertise="0.0.0.0")  # reading needs no address of our own
    except NetError as exc:
        raise click.BadParameter(exc.message, param_hint="--cluster") from None
    store = EtcdStore(Etcd(settings.endpoints), settings.advertise)
    now = time.time()
    rows = []
    for member in _read(lambda: store.members(with_ttl=True)):
        healthy = member.ttl > 0
        seen = f"{max(0, LEASE_TTL - member.ttl)}s ago" if healthy else "-"
        rows.append((member.address, "healthy" if healthy else "expired", seen, f"{member.ttl}s" if healthy else "-",
                     _ago(now - member.joined)))
    click.echo(_table(("HOST", "HEALTH", "LAST SEEN", "LEASE LEFT", "JOINED"), rows))


def _ago(seconds: float) -> str:
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"

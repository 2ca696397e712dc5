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

from powerstrip import gatewayinfo
from powerstrip.adapters.net.attachments import Attachments, Membership
from powerstrip.adapters.net.cluster import DEFAULT_MTU, ClusterSettings, cluster_settings
from powerstrip.adapters.net.converger import LEASE_TTL
from powerstrip.adapters.net.housekeeping import LOST_HOST_GRACE
from powerstrip.adapters.net.docker_api import DockerError
from powerstrip.adapters.net.etcd_store import EtcdStore
from powerstrip.adapters.net.model import NetError, Network
from powerstrip.adapters.net.networks import VirtualNetworks, bridge_name, open_networks
from powerstrip.optiongroups import grouped

T = TypeVar("T")
DEFAULT_DOCKER = "unix:///var/run/docker.sock"


_FILE = click.Path(exists=True, dir_okay=False)
_STORE_OPTIONS = (  # the cluster store and how to reach it securely, as etcdctl's --cacert/--cert/--key/--user
    click.option("--cluster", "cluster_url", metavar="etcd[s]://HOST:PORT[,HOST:PORT...]", envvar="POWERSTRIP_CLUSTER",
                 help="Multi-host networks with their state in this etcd cluster; etcds:// for TLS "
                      "(env POWERSTRIP_CLUSTER)."),
    click.option("--cluster-cacert", type=_FILE, envvar="POWERSTRIP_CLUSTER_CACERT",
                 help="CA bundle that signed the etcd servers' certificates (default: the system's)."),
    click.option("--cluster-cert", type=_FILE, envvar="POWERSTRIP_CLUSTER_CERT",
                 help="Client certificate for etcd (with --cluster-key)."),
    click.option("--cluster-key", type=_FILE, envvar="POWERSTRIP_CLUSTER_KEY", help="Key of --cluster-cert."),
    click.option("--cluster-user", metavar="NAME[:PASSWORD]", envvar="POWERSTRIP_CLUSTER_USER",
                 help="etcd user (env POWERSTRIP_CLUSTER_USER)."),
    click.option("--cluster-password", metavar="PASSWORD", envvar="POWERSTRIP_CLUSTER_PASSWORD",
                 help="Password of --cluster-user when not given with it (env POWERSTRIP_CLUSTER_PASSWORD)."),
)
_HOST_OPTIONS = (  # this host in the cluster
    click.option("--advertise", metavar="ADDRESS", envvar="POWERSTRIP_ADVERTISE",
                 help="This host's underlay address (default: the source address of the route to the cluster store)."),
    click.option("--advertise-gateway", metavar="URL", envvar="POWERSTRIP_ADVERTISE_GATEWAY",
                 help="How other machines reach this host's gateway (tcp://ADDRESS:PORT of a --listen), "
                      "recorded with its membership for `powerstrip inventory`."),
    click.option("--overlay-mtu", default=DEFAULT_MTU, show_default=True, envvar="POWERSTRIP_OVERLAY_MTU",
                 help="MTU of multi-host networks (the underlay's MTU minus 50 for VXLAN)."),
    click.option("--lost-host-grace", default=LOST_HOST_GRACE, show_default=True, metavar="SECONDS",
                 envvar="POWERSTRIP_LOST_HOST_GRACE",
                 help="How long a host may be without its lease before another host reclaims its addresses."),
    click.option("--dns-upstream", "dns_upstreams", multiple=True, metavar="ADDRESS",
                 envvar="POWERSTRIP_DNS_UPSTREAM",
                 help="Where names that are not containers' go (repeatable; default: /etc/resolv.conf's servers)."),
)


def _settings(cluster_url: str | None, advertise: str | None, overlay_mtu: int, advertise_gateway: str | None,
              security: dict[str, str | None], lost_host_grace: float = LOST_HOST_GRACE,
              dns_upstreams: tuple[str, ...] = ()) -> ClusterSettings | None:
    """``ClusterSettings`` from the options (``None`` without --cluster); bad ones are usage errors."""
    if not cluster_url:
        return None
    try:
        return cluster_settings(cluster_url, advertise, overlay_mtu, advertise_gateway,
                                cacert=security["cluster_cacert"], cert=security["cluster_cert"],
                                key=security["cluster_key"], user=security["cluster_user"],
                                password=security["cluster_password"], lost_host_grace=lost_host_grace,
                                dns_upstreams=dns_upstreams)
    except NetError as exc:
        raise click.BadParameter(exc.message, param_hint="--cluster options") from None


def _security(kwargs: dict[str, Any]) -> dict[str, str | None]:
    return {name: kwargs.pop(name) for name in
            ("cluster_cacert", "cluster_cert", "cluster_key", "cluster_user", "cluster_password")}


CLUSTER_OPTIONS = _STORE_OPTIONS + _HOST_OPTIONS


def cluster_from_options(cluster_url: str | None, cluster_cacert: str | None, cluster_cert: str | None,
                         cluster_key: str | None, cluster_user: str | None, cluster_password: str | None,
                         advertise: str | None, advertise_gateway: str | None, overlay_mtu: int,
                         lost_host_grace: float, dns_upstreams: tuple[str, ...]) -> ClusterSettings | None:
    """The values of ``CLUSTER_OPTIONS`` as the net adapter's ``ClusterSettings`` (``None`` without
    --cluster), for ``optiongroups.grouped``; bad ones are usage errors."""
    security = {"cluster_cacert": cluster_cacert, "cluster_cert": cluster_cert, "cluster_key": cluster_key,
                "cluster_user": cluster_user, "cluster_password": cluster_password}
    return _settings(cluster_url, advertise, overlay_mtu, advertise_gateway, security, lost_host_grace, dns_upstreams)


def cluster_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The cluster store options (``--cluster``, TLS, user) and this host's (``--advertise``,
    ``--advertise-gateway``, ``--overlay-mtu``, ``--lost-host-grace``, ``--dns-upstream``), handed to ``command`` as ``cluster`` (or ``None``)."""
    return grouped(*CLUSTER_OPTIONS, cluster=cluster_from_options)(command)


def store_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Only the cluster store options (a command that reads the store and is no host of it), handed to
    ``command`` as ``cluster``; --cluster is required."""

    @functools.wraps(command)
    def with_store(*args: Any, cluster_url: str | None, **kwargs: Any) -> Any:
        if not cluster_url:
            raise click.UsageError("Missing option '--cluster' (or env POWERSTRIP_CLUSTER).")
        # reading needs no address of our own
        kwargs["cluster"] = _settings(cluster_url, "0.0.0.0", DEFAULT_MTU, None, _security(kwargs))
        return command(*args, **kwargs)

    for option in reversed(_STORE_OPTIONS):
        with_store = option(with_store)
    return with_store


def state_options(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def with_docker(*args: Any, docker: str | None, state_dir: Path, **kwargs: Any) -> Any:
        # not given: the daemon of the gateway that runs with this state directory (make run), else the default
        docker = docker or gatewayinfo.docker_of(state_dir) or DEFAULT_DOCKER
        return command(*args, docker=docker, state_dir=state_dir, **kwargs)

    wrapped = cluster_options(with_docker)
    wrapped = click.option(
        "--state-dir",
        envvar="POWERSTRIP_STATE_DIR",
        default=".powerstrip",
        show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="powerstrip's state directory (env POWERSTRIP_STATE_DIR).",
    )(wrapped)
    return click.option(
        "--docker",
        envvar="POWERSTRIP_DOCKER_HOST",
        help="The Docker daemon (env POWERSTRIP_DOCKER_HOST; default: the one the gateway running with "
             f"this --state-dir forwards to, else {DEFAULT_DOCKER}).",
    )(wrapped)


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

    async def delete_network(networks: VirtualNetworks) -> tuple[Network, bool]:
        deleted = await networks.delete(name)
        return deleted, bridge_name(deleted) in networks.left_behind

    deleted, left_behind = run(docker, state_dir, cluster, delete_network)
    click.echo(deleted.name)
    if left_behind:  # the reason is the warning logged above; this process ends: the gateway's sweep finds it
        click.echo(f"warning: network {deleted.name} is deleted, but its Docker network {bridge_name(deleted)} is "
                   "left behind: the gateway removes it once dockerd lets it (until then its range stays taken "
                   "on this host)", err=True)


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
@store_options
def members(cluster: ClusterSettings) -> None:
    """List the hosts: underlay address, health (membership lease) and when they were last seen."""
    store = EtcdStore(cluster.connect(), cluster.advertise)
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

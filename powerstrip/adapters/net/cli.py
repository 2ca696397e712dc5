"""``powerstrip network ...`` and ``powerstrip info CONTAINER``: Socketplane's commands.

They talk to the daemon directly (``--docker``) and share the gateway's state (``--state-dir``).
Errors read and exit like the docker CLI's: ``Error response from daemon: ...``, exit status 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from powerstrip.adapters.net.attachments import Attachments, Membership
from powerstrip.adapters.net.docker_api import DockerError
from powerstrip.adapters.net.model import NetError
from powerstrip.adapters.net.networks import VirtualNetworks, open_networks

T = TypeVar("T")


def _state_options(command: Callable[..., Any]) -> Callable[..., Any]:
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


def _run(docker: str, state_dir: Path, action: Callable[[VirtualNetworks], Awaitable[T]]) -> T:
    async def main() -> T:
        networks = open_networks(docker, state_dir)
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
@_state_options
def create(name: str, cidr: str, docker: str, state_dir: Path) -> None:
    """Create network NAME with range CIDR (e.g. 10.6.0.0/16); its gateway is the first address."""
    created = _run(docker, state_dir, lambda networks: networks.create(name, cidr))
    click.echo(created.name)


@network.command("list")
@_state_options
def list_(docker: str, state_dir: Path) -> None:
    """List the networks with their range, gateway and number of containers."""
    store = open_networks(docker, state_dir).store
    allocations = store.allocations()
    rows = [(n.name, n.cidr, n.gateway, sum(a.network == n.name for a in allocations)) for n in store.networks()]
    click.echo(_table(("NAME", "CIDR", "GATEWAY", "CONTAINERS"), rows))


@network.command("info")
@click.argument("name")
@_state_options
def network_info(name: str, docker: str, state_dir: Path) -> None:
    """Show network NAME and the containers on it."""
    store = open_networks(docker, state_dir).store
    try:
        found = store.network(name)
    except NetError as exc:
        fail(f"Error response from daemon: {exc.message}")
    origin = "SOCKETPLANE_CIDR (goes with its last container)" if found.implicit else "powerstrip network create"
    click.echo(f"Name:       {found.name}\nCIDR:       {found.cidr}\nGateway:    {found.gateway}\nCreated by: {origin}\n")
    rows = [(a.container_name or (a.container or "(being created)")[:12], a.address, a.owner) for a in store.allocations(name)]
    click.echo(_table(("CONTAINER", "IP", "NETWORK-ONLY CONTAINER"), rows))


@network.command("delete")
@click.argument("name")
@_state_options
def delete(name: str, docker: str, state_dir: Path) -> None:
    """Delete network NAME (refused while containers are attached)."""
    click.echo(_run(docker, state_dir, lambda networks: networks.delete(name)).name)


@click.command("info")
@click.argument("container")
@_state_options
def info(container: str, docker: str, state_dir: Path) -> None:
    """Show a container's virtual network, IP, MAC and gateway."""

    async def describe(networks: VirtualNetworks) -> Membership:
        return await Attachments(networks, networks.docker).membership(container)

    found = _run(docker, state_dir, describe)
    click.echo(
        f"Container: {found.container}\n"
        f"Network:   {found.network.name}\n"
        f"IP:        {found.allocation.address}/{found.network.cidr.prefixlen}\n"
        f"MAC:       {found.mac or '-'}\n"
        f"Gateway:   {found.network.gateway}"
    )

"""``powerstrip qos add policy JSON | list | delete NAME``.

Policies go to the same store as the networks (``--state-dir``, or the cluster with ``--cluster``).
``add`` and ``delete`` then run one pass on this host at once (``--docker``), so the change is in
this host's kernel when the command returns; the gateway's converger (adapter ``qos``) keeps it
there and applies it on the other hosts of a cluster. Errors read like the docker CLI's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from powerstrip.adapters.net.cli import fail, state_options
from powerstrip.adapters.net.cluster import ClusterSettings
from powerstrip.adapters.net.docker_api import DockerError
from powerstrip.adapters.net.model import Allocation, NetError
from powerstrip.adapters.qos.engine import endpoint_of
from powerstrip.adapters.qos.plan import plan
from powerstrip.adapters.qos.policy import LOCAL_HOST, Policy, describe_action, describe_match, parse_policy
from powerstrip.adapters.qos.service import Qos, add_policy, open_qos
from powerstrip.adapters.qos.store import Applied

T = TypeVar("T")


def _run(docker: str, state_dir: Path, cluster: ClusterSettings | None, action: Callable[[Qos], Awaitable[T]]) -> T:
    async def main() -> T:
        qos = open_qos(docker, state_dir, cluster)
        try:
            return await action(qos)
        finally:
            await qos.networks.docker.close()

    try:
        return asyncio.run(main())
    except DockerError as exc:
        fail(exc.message if exc.status == 0 else f"Error response from daemon: {exc.message}")
    except NetError as exc:
        fail(f"Error response from daemon: {exc.message}")


async def _apply_here(qos: Qos) -> None:
    """One pass on this host; a daemon that cannot be reached leaves it to the gateway (said on stderr)."""
    logging.getLogger("powerstrip.adapters.qos").setLevel(logging.ERROR)  # problems show in qos list
    try:
        await qos.engine.sync()
    except DockerError as exc:
        click.echo(f"warning: not applied on this host yet: {exc.message}", err=True)
    except TimeoutError:
        click.echo("warning: not applied on this host yet: another pass held the lock; the gateway applies it", err=True)


@click.group("qos")
def qos_group() -> None:
    """Quality of service on powerstrip's networks: rate limits and DSCP marks by policy."""


@qos_group.group("add")
def add() -> None:
    """Add a QoS object."""


@add.command("policy")
@click.argument("document", metavar="JSON")
@state_options
def add_policy_command(document: str, docker: str, state_dir: Path, cluster: ClusterSettings | None) -> None:
    """Add the policy JSON, e.g. '{"name": "limit-h1", "ip-src": "10.0.6.2", "rate": "2mbit"}'.

    Match fields: ip-src, ip-dst (address or CIDR on a powerstrip network), protocol (tcp, udp, icmp
    or a number), tp-src, tp-dst, network. Actions: rate (kbit, mbit, gbit) with optional burst
    (bytes, or k, m), and/or dscp (0-63 or a name: EF, AF11..AF43, CS0..CS7).
    """

    async def act(qos: Qos) -> Policy:
        policy = await add_policy(qos, parse_policy(document))
        await _apply_here(qos)
        return policy

    click.echo(_run(docker, state_dir, cluster, act).name)


@qos_group.command("delete")
@click.argument("name")
@state_options
def delete(name: str, docker: str, state_dir: Path, cluster: ClusterSettings | None) -> None:
    """Delete policy NAME: every qdisc, class, filter and mark it made goes."""

    async def act(qos: Qos) -> Policy:
        policy = await asyncio.to_thread(qos.policies.delete_policy, name)
        await _apply_here(qos)
        return policy

    click.echo(_run(docker, state_dir, cluster, act).name)


@qos_group.command("list")
@state_options
def list_(docker: str, state_dir: Path, cluster: ClusterSettings | None) -> None:
    """List the policies: match, action, where they act (container: what it sends; host: what it
    receives), their state as the hosts last applied them, and who made them (``-``: an operator;
    a host-aware rule's qos: action; a container's SP_QOS_RATE)."""

    async def read(qos: Qos) -> tuple[list[Policy], list[Allocation], dict[str, Applied]]:
        return await asyncio.gather(asyncio.to_thread(qos.policies.policies),
                                    asyncio.to_thread(qos.networks.store.allocations),
                                    asyncio.to_thread(qos.policies.applied))

    policies, allocations, applied = _run(docker, state_dir, cluster, read)
    rows = [(p.name, describe_match(p.match), describe_action(p), *_where(p, allocations, applied, cluster is not None),
             p.describe_owner()) for p in policies]
    click.echo(_table(("NAME", "MATCH", "ACTION", "APPLIED TO", "STATE", "OWNER"), rows))


def _where(policy: Policy, allocations: list[Allocation], applied: dict[str, Applied], clustered: bool) -> tuple[str, str]:
    """``web1 (container), web2 (host)`` and the state: applied, pending, errors, or waiting for a container."""
    places, states = [], []
    for allocation in allocations:
        if allocation.container is None:
            continue
        endpoint = endpoint_of(allocation)
        side = plan(endpoint, [policy]).placements().get(policy.name)
        if side is None:
            continue
        host = allocation.host or LOCAL_HOST
        places.append(f"{endpoint.container} ({side}{', ' + host if clustered else ''})")
        state = applied.get(host, {}).get(policy.name, {}).get(endpoint.container, "pending")
        states.append(state if state == "applied" else f"{endpoint.container}: {state}")
    if not places:
        return "-", "waiting: no container matches yet"
    problems = [s for s in states if s != "applied"]
    return ", ".join(places), "; ".join(problems) if problems else "applied"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    cells = [list(header)] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


"""One pass over this host: from the stores to the kernel, for every local container on a powerstrip network.

It must run in the network namespace of the Docker daemon (the host's, as the gateway does), where
the host ends of the containers' veths are. A container's own end is ``eth0`` in the namespace of
its network-only container (``/proc/PID/ns/net``). A pass also retires the policies made from
``SP_QOS_RATE`` whose container is gone, and records per policy and container what it applied,
which ``qos list`` shows. Passes of the gateway and of the CLI on one host never interleave (a lock
file per network namespace).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from powerstrip.adapters.net.docker_api import DockerError
from powerstrip.adapters.net.model import Allocation, NotFound
from powerstrip.adapters.net.networks import VirtualNetworks
from powerstrip.adapters.qos import marks, tc
from powerstrip.adapters.qos.netns import run_in
from powerstrip.adapters.qos.plan import Endpoint, EndpointPlan, plan
from powerstrip.adapters.qos.policy import LOCAL_HOST, Policy
from powerstrip.adapters.qos.store import Applied, PolicyStore

log = logging.getLogger(__name__)

APPLIED, NOT_RUNNING = "applied", "not running"
LOCK_DIR = Path("/run/lock")
LOCK_SECONDS = 30.0  # a pass takes well under a second per container


@dataclass(slots=True)
class _Seen:
    """What a namespace's mark chain held after the last pass (saves an iptables call per pass)."""

    inode: int
    marks: list[str] | None


@dataclass(slots=True)
class Engine:
    networks: VirtualNetworks
    policies: PolicyStore
    _marks: dict[int, _Seen] = field(default_factory=dict)  # holder pid -> its chain as last seen
    _recorded: Applied | None = None

    @property
    def host(self) -> str:
        return self.networks.host or LOCAL_HOST

    async def sync(self) -> Applied:
        """Apply every policy on this host now; returns policy -> container -> state."""
        allocations = await asyncio.to_thread(self.networks.store.allocations)
        policies = await self._current_policies(allocations)
        endpoints = [endpoint_of(a) for a in allocations if a.host == self.networks.host and a.container is not None]
        applied: Applied = {p.name: {} for p in policies}
        async with _host_lock():
            for endpoint in endpoints:
                wanted = plan(endpoint, policies)
                state = await self._apply(wanted)
                for name in wanted.placements():
                    applied[name][endpoint.container] = state
        live = {p for p in self._marks if os.path.exists(f"/proc/{p}")}
        self._marks = {p: seen for p, seen in self._marks.items() if p in live}
        if applied != self._recorded:
            await asyncio.to_thread(self.policies.record_applied, self.host, applied)
            self._recorded = applied
        return applied

    async def _current_policies(self, allocations: list[Allocation]) -> list[Policy]:
        """The policies, less those made for a container (``SP_QOS_RATE``) that is gone: deleted now."""
        owners = {a.owner for a in allocations}
        kept = []
        for policy in await asyncio.to_thread(self.policies.policies):
            if policy.owner is None or policy.owner in owners:
                kept.append(policy)
                continue
            try:
                await asyncio.to_thread(self.policies.delete_policy, policy.name)
                log.info("qos: policy %s removed: its container is gone", policy.name)
            except NotFound:
                pass  # another host or the CLI was first
        return kept

    async def _apply(self, wanted: EndpointPlan) -> str:
        endpoint = wanted.endpoint
        try:
            pid = await self._holder_pid(endpoint.owner)
            if pid is None:
                return NOT_RUNNING
            return await asyncio.to_thread(self._program, pid, wanted)
        except (tc.ForeignQdisc, marks.MarkError, NetlinkError, OSError, DockerError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            log.warning("qos: %s: %s", endpoint.container, message)
            return f"error: {message}"

    def _program(self, pid: int, wanted: EndpointPlan) -> str:
        netns = f"/proc/{pid}/ns/net"
        inode = os.stat(netns).st_ino

        def inside(ipr: IPRoute) -> tuple[int, bool]:
            index, peer = own_end(ipr)
            return peer, tc.program(ipr, index, wanted.egress)

        peer, changed = run_in(netns, inside)
        with IPRoute() as here:
            changed |= tc.program(here, host_end(here, peer), wanted.ingress)
        seen = self._marks.get(pid)
        known = seen.marks if seen is not None and seen.inode == inode and not wanted.marks else None
        changed |= marks.program(netns, wanted.marks, known)
        self._marks[pid] = _Seen(inode, [marks.comment(m) for m in wanted.marks] or None)
        if changed:
            log.info("qos: %s: programmed (%d egress, %d ingress shaper(s), %d mark(s))", wanted.endpoint.container,
                     len(wanted.egress), len(wanted.ingress), len(wanted.marks))
        return APPLIED

    async def _holder_pid(self, owner: str) -> int | None:
        try:
            found = await self.networks.docker.call("GET", f"/containers/{owner}/json")
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise
        state = found.get("State") or {}
        return int(state["Pid"]) if state.get("Running") and state.get("Pid") else None


def own_end(inside: IPRoute) -> tuple[int, int]:
    """The container's ``eth0`` in its namespace: its index, and the index of its veth peer on the host."""
    found = inside.link_lookup(ifname="eth0")
    if not found:
        raise OSError("the container has no eth0")
    (link,) = inside.get_links(found[0])
    return found[0], link.get("IFLA_LINK") or 0


def host_end(here: IPRoute, peer: int) -> int:
    """The host end of the container's veth, which must be in this (the daemon's) namespace."""
    try:
        if peer and here.get_links(peer):
            return peer
    except NetlinkError:
        pass
    raise OSError("the host end of the container's veth is not in this network namespace: "
                  "run powerstrip in the Docker daemon's network namespace")


def endpoint_of(allocation: Allocation) -> Endpoint:
    """The endpoint of a bound allocation, named as users know the container, on the host that runs it."""
    name = allocation.container_name or (allocation.container or allocation.owner)[:12]
    return Endpoint(allocation.owner, name, allocation.network, allocation.address, allocation.host or LOCAL_HOST)


@asynccontextmanager
async def _host_lock(timeout: float = LOCK_SECONDS) -> AsyncIterator[None]:
    """One pass at a time per network namespace (the gateway's converger and a CLI command)."""
    inode = os.stat("/proc/self/ns/net").st_ino
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_DIR / f"powerstrip-qos-{inode}.lock", "w") as lock:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

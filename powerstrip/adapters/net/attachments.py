"""Network-only containers: the address holders that users' containers join.

A network-only container is created (and started) on the virtual network's bridge with the
address powerstrip allocated; the user's container runs in its network namespace. Each
network-only container is named after its allocation's owner (``ps-net-…``) and labelled, so
the daemon's view and the store can always be compared and repaired (``reconcile``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from ipaddress import IPv4Address

from powerstrip.adapters.net.create_body import Wanted
from powerstrip.adapters.net.docker_api import DockerAPI, DockerError
from powerstrip.adapters.net.etcd_store import EtcdStore
from powerstrip.adapters.net.model import Allocation, Conflict, Network, NotFound
from powerstrip.adapters.net.networks import LABEL_NETWORK, VirtualNetworks, bridge_name
from powerstrip.adapters.net.pause_image import ensure_pause_image

log = logging.getLogger(__name__)

LABEL_ROLE = "powerstrip.net.role"
ROLE = "network-only"
# How long an address may stay pending (reserved for a create request that never completed).
PENDING_GRACE = 60.0


def new_owner() -> str:
    return f"ps-net-{secrets.token_hex(6)}"


@dataclass(frozen=True, slots=True)
class Membership:
    """Where a container is: its virtual network, its address and its interface's MAC (if running)."""

    container: str
    network: Network
    allocation: Allocation
    mac: str | None


class Attachments:
    def __init__(self, networks: VirtualNetworks, docker: DockerAPI) -> None:
        self.networks = networks
        self.docker = docker
        self._image: str | None = None
        self._image_lock = asyncio.Lock()
        self._reconcile_lock = asyncio.Lock()  # the watcher's and a re-join's reconcile never interleave

    async def attach(
        self, owner: str, wanted: Wanted, config: dict[str, Any], host_config: dict[str, Any], name: str | None
    ) -> Allocation:
        """Allocate an address and start the network-only container ``owner`` with it; all or nothing."""
        image = await self._pause_image()
        network, allocation = await self.networks.reserve(wanted.network, wanted.cidr, owner)
        bridge = bridge_name(network)
        endpoint: dict[str, Any] = {"IPAMConfig": {"IPv4Address": str(allocation.address)}}
        if name:
            endpoint["Aliases"] = [name]  # other containers on the network resolve the user's name
        resolvers = self.networks.resolvers(network) if self.networks.resolvers else []
        if resolvers and not host_config.get("Dns"):  # Docker's DNS forwards what it does not know there
            host_config = {**host_config, "Dns": resolvers}
        spec = {
            **config,
            "Image": image,
            "Labels": {LABEL_ROLE: ROLE, LABEL_NETWORK: network.name},
            "HostConfig": {**host_config, "NetworkMode": bridge, "RestartPolicy": {"Name": "always"}},
            "NetworkingConfig": {"EndpointsConfig": {bridge: endpoint}},
        }
        try:
            await self.docker.call("POST", "/containers/create", params={"name": owner}, body=spec)
            await self.docker.call("POST", f"/containers/{owner}/start")
        except BaseException:
            await self.detach(owner)
            raise
        return allocation

    async def bind(self, owner: str, container: str, name: str | None) -> None:
        if name is None:  # the daemon chose it: ask, so that listings and "docker rm NAME" find it
            found = await self._inspect(container)
            name = found["Name"].lstrip("/") if found else None
        await asyncio.to_thread(self.networks.store.bind, owner, container, name)

    async def detach(self, owner: str) -> Allocation | None:
        """Remove the network-only container, then free its address (never the other way round)."""
        await self._remove(owner)
        return await self.networks.release(owner)

    async def detach_removed(self, ref: str) -> None:
        """After ``DELETE /containers/{ref}``: detach what belonged to that (now gone) container."""
        for allocation in await self.networks.local_allocations():
            matches = allocation.container_name == ref or (allocation.container or "").startswith(ref)
            if matches and allocation.container and await self._inspect(allocation.container) is None:
                if await self.detach(allocation.owner) is None:
                    # The watcher released it first and may still be removing the emptied network: wait
                    # for that, so that the user's DELETE is answered once its network is gone too.
                    await self.networks.drop_if_empty(allocation.network)

    async def on_destroyed(self, container: str, name: str | None) -> None:
        """A container is gone (event): detach its network-only container, or forget a removed one's address;
        then try again the Docker networks dockerd refused earlier (that container may have held them)."""
        for allocation in await self.networks.local_allocations():
            if allocation.container == container or allocation.owner == name:
                await self.detach(allocation.owner)
        if self.networks.left_behind:
            await self.networks.sweep_bridges()

    async def ensure_running(self, ref: str) -> None:
        """Before a start: the network-only container a container joins must run (e.g. after a daemon restart)."""
        container = await self._inspect(ref)
        mode = ((container or {}).get("HostConfig") or {}).get("NetworkMode") or ""
        if not mode.startswith("container:"):
            return
        netcontainer = await self._inspect(mode.removeprefix("container:"))
        labels = ((netcontainer or {}).get("Config") or {}).get("Labels") or {}
        if netcontainer and labels.get(LABEL_ROLE) == ROLE and not netcontainer["State"]["Running"]:
            await self.docker.call("POST", f"/containers/{netcontainer['Id']}/start")

    async def membership(self, ref: str) -> Membership:
        container = await self._inspect(ref)
        if container is None:
            raise NotFound(f"No such container: {ref}")
        mode = (container.get("HostConfig") or {}).get("NetworkMode") or ""
        holder = await self._inspect(mode.removeprefix("container:")) if mode.startswith("container:") else None
        owner = (holder or {}).get("Name", "").lstrip("/")
        store = self.networks.store
        allocation = next((a for a in await asyncio.to_thread(store.allocations) if a.owner == owner), None)
        if holder is None or allocation is None:
            raise NotFound(f"container {ref} is not on a powerstrip network")
        network = await asyncio.to_thread(store.network, allocation.network)
        endpoint = ((holder.get("NetworkSettings") or {}).get("Networks") or {}).get(bridge_name(network)) or {}
        return Membership(container["Name"].lstrip("/"), network, allocation, endpoint.get("MacAddress") or None)

    async def reconcile(self) -> None:
        """Repair what was missed (the gateway was down, a hook never came): free the addresses of
        containers that are gone, bind pending ones whose container exists, remove stray holders and
        the Docker networks left behind (``VirtualNetworks.sweep_bridges``); in a cluster, take back
        the addresses of containers whose allocation was reclaimed while this host was lost (``_readopt``)."""
        async with self._reconcile_lock:
            await self._reconcile()

    async def _reconcile(self) -> None:
        # Allocations first: a container created after the listing cannot then look "gone".
        allocations = await self.networks.local_allocations()
        containers = await self.docker.call("GET", "/containers/json", params={"all": "1"}) or []
        ids = {c["Id"] for c in containers}
        holders = {c["Names"][0].lstrip("/"): c for c in containers if (c.get("Labels") or {}).get(LABEL_ROLE) == ROLE}
        joined = {
            c["HostConfig"]["NetworkMode"].removeprefix("container:"): c
            for c in containers
            if (c.get("HostConfig") or {}).get("NetworkMode", "").startswith("container:")
        }
        now = time.time()
        for allocation in allocations:
            holder = holders.get(allocation.owner)
            user = joined.get(holder["Id"]) if holder else None
            if allocation.container is not None:
                if allocation.container not in ids or holder is None:
                    await self.detach(allocation.owner)
            elif user is not None:
                await self.bind(allocation.owner, user["Id"], user["Names"][0].lstrip("/"))
            elif now - allocation.created > PENDING_GRACE:
                await self.detach(allocation.owner)
        for holder in holders.values():
            user = joined.get(holder["Id"])
            if user is not None and holder.get("State") == "running" and user.get("State") != "running":
                await self._restart_after_restore(user)
        owners = {a.owner for a in allocations}
        for name, holder in holders.items():
            if name in owners:
                continue
            user = joined.get(holder["Id"])
            if user is not None and isinstance(self.networks.store, EtcdStore):
                await self._readopt(self.networks.store, name, holder, user)
            elif now - holder["Created"] > PENDING_GRACE:
                log.info("removing stray network-only container %s", name)
                await self._remove(name)
        await self.networks.sweep_bridges()  # last: the holders removed above may have kept a bridge in use

    async def _restart_after_restore(self, user: dict[str, Any]) -> None:
        """Start a container its restart policy should have brought back with the daemon, but that lost the race.

        dockerd restarts the containers of a restart policy all at once when it starts; one that runs in its
        network-only container's namespace fails (``cannot join network of a non running container``) when
        it goes before that one, and dockerd does not try again. The error stays in its state: only such a
        container is started, never one a user stopped."""
        name = user["Names"][0].lstrip("/")
        try:
            state = await self.docker.call("GET", f"/containers/{user['Id']}/json")
        except DockerError:
            return  # gone meanwhile
        policy = ((state.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name", "")
        error = (state.get("State") or {}).get("Error", "")
        if policy not in ("always", "unless-stopped") or "join network of a non running container" not in error:
            return
        log.info("net: starting %s, which its restart policy could not bring back with the daemon (%s)", name, error)
        try:
            await self.docker.call("POST", f"/containers/{user['Id']}/start")
        except DockerError as exc:
            log.warning("net: cannot start %s again: %s", name, exc)

    async def _readopt(self, store: EtcdStore, owner: str, holder: dict[str, Any], user: dict[str, Any]) -> None:
        """A running user's container whose address is no longer allocated (reclaimed while this host was
        lost): the same address if it is still free, else a new one (the holder is re-connected with it)."""
        name = user["Names"][0].lstrip("/")
        label = (holder.get("Labels") or {}).get(LABEL_NETWORK, "")
        try:
            network = await asyncio.to_thread(store.network, label)
        except NotFound:
            log.warning("net: container %s is on network %s, which was deleted while this host was lost", name, label)
            return
        bridge = bridge_name(network)
        endpoint = ((holder.get("NetworkSettings") or {}).get("Networks") or {}).get(bridge) or {}
        text = (endpoint.get("IPAMConfig") or {}).get("IPv4Address") or endpoint.get("IPAddress") or ""
        if text:
            try:
                adopted = await asyncio.to_thread(store.adopt, network.name, IPv4Address(text), owner, user["Id"], name)
            except Conflict as exc:
                log.warning("net: container %s cannot have its address back: %s", name, exc.message)
            else:
                if adopted is not None:
                    log.warning("net: container %s got its address %s on %s back (it had been reclaimed while "
                                "this host was lost)", name, text, network.name)
                return  # adopted, or recorded meanwhile by the create in flight
        allocation = await asyncio.to_thread(store.allocate, network.name, owner)
        await asyncio.to_thread(store.bind, owner, user["Id"], name)
        await self.docker.call("POST", f"/networks/{bridge}/disconnect", body={"Container": holder["Id"], "Force": True})
        await self.docker.call("POST", f"/networks/{bridge}/connect", body={
            "Container": holder["Id"],
            "EndpointConfig": {"IPAMConfig": {"IPv4Address": str(allocation.address)}, "Aliases": [name]},
        })
        log.warning("net: container %s on %s now has the address %s (its old one, %s, was given to another "
                    "container while this host was lost)", name, network.name, allocation.address, text or "unknown")

    async def _pause_image(self) -> str:
        async with self._image_lock:  # concurrent first creates build the image once
            if self._image is None:
                self._image = await ensure_pause_image(self.docker)
            return self._image

    async def _inspect(self, ref: str) -> dict[str, Any] | None:
        try:
            return await self.docker.call("GET", f"/containers/{ref}/json")
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise

    async def _remove(self, ref: str) -> None:
        """Force-remove a container; returns once it is gone, also when someone else is removing it."""
        try:
            await self.docker.call("DELETE", f"/containers/{ref}", params={"force": "1"})
        except DockerError as exc:
            if exc.status == 409 and "already in progress" in exc.message:
                async with asyncio.timeout(self.docker.timeout):
                    while await self._inspect(ref) is not None:
                        await asyncio.sleep(0.05)
            elif exc.status != 404:
                raise

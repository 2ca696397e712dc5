"""Virtual networks as users see them, kept in step across the state store and Docker.

On one host a virtual network is carried by a Docker bridge network ``ps-NAME`` with the same
subnet and gateway: Docker then gives isolation between networks, the gateway address, and name
resolution inside a network. The store stays the authority on names, ranges and addresses.
With a cluster store, the bridge gets a fixed kernel name (``psbrVNI``, where the overlay attaches
its VXLAN device) and the overlay MTU, and this host only looks after its own allocations.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from powerstrip.adapters.net import ipam
from powerstrip.adapters.net.cluster import ClusterSettings
from powerstrip.adapters.net.docker_api import DockerAPI, DockerError
from powerstrip.adapters.net.etcd_store import EtcdStore
from powerstrip.adapters.net.model import Allocation, Conflict, InvalidInput, Network, NotFound, StoreUnavailable
from powerstrip.adapters.net.overlay import bridge_name as kernel_bridge_name
from powerstrip.adapters.net.sqlite_store import SqliteStore
from powerstrip.adapters.net.store import Store

log = logging.getLogger(__name__)

DEFAULT = Network("default", IPv4Network("10.1.0.0/16"), IPv4Address("10.1.0.1"))
LABEL_NETWORK = "powerstrip.net.network"
STATE_FILE = "net.sqlite3"
BRIDGE_REMOVAL_SECONDS = 10.0  # how long a refused bridge removal is retried while endpoints are listed
DRIFT_SECONDS = 1.0  # ... and while none is listed (the endpoint count drifted, moby#42119, once this passed)
_REFUSED = (403, 409)  # dockerd refuses a network removal: still in use (or so it believes)


def bridge_name(network: Network) -> str:
    return f"ps-{network.name}"


def open_networks(docker_url: str, state_dir: Path, cluster: ClusterSettings | None = None) -> VirtualNetworks:
    """The networks of the daemon at ``docker_url`` with state in ``state_dir``, or in the cluster store."""
    if cluster is None:
        return VirtualNetworks(SqliteStore(state_dir / STATE_FILE, seed=[DEFAULT]), DockerAPI(docker_url))
    store = EtcdStore(cluster.connect(), cluster.advertise, seed=[DEFAULT], gateway=cluster.gateway)
    try:
        store.ensure_seed()
    except StoreUnavailable as exc:  # the converger adds it once the store answers
        log.warning("net: %s", exc.message)
    return VirtualNetworks(store, DockerAPI(docker_url), cluster)


class VirtualNetworks:
    def __init__(self, store: Store, docker: DockerAPI, cluster: ClusterSettings | None = None) -> None:
        self.store = store
        self.docker = docker
        self.cluster = cluster
        # Called once a network's bridge exists here (the overlay wires it before a container uses it).
        self.on_bridge: Callable[[Network], Awaitable[None]] | None = None
        # The DNS servers a network's containers get, when powerstrip serves names there (cluster names).
        self.resolvers: Callable[[Network], list[str]] | None = None
        # Within this process, reserving on a network and dropping an empty implicit one never interleave.
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # Docker networks whose removal dockerd refused (bridge name -> virtual network name): retried when a
        # container goes and on each reconcile (``sweep_bridges``), so none is left for good.
        self.left_behind: dict[str, str] = {}

    @property
    def host(self) -> str | None:
        """This host's underlay address in a cluster (allocations carry it), else ``None``."""
        return self.cluster.advertise if self.cluster else None

    async def local_allocations(self) -> list[Allocation]:
        """The allocations of containers on this host (all of them on a single host)."""
        return [a for a in await asyncio.to_thread(self.store.allocations) if a.host == self.host]

    async def create(self, name: str, cidr_text: str) -> Network:
        ipam.check_name(name)
        network = await asyncio.to_thread(self.store.create_network, name, ipam.parse_cidr(cidr_text))
        try:
            await self.ensure_bridge(network)
        except BaseException:
            await asyncio.to_thread(self.store.delete_network, name)
            raise
        return network

    async def delete(self, name: str) -> Network:
        """Delete virtual network ``name`` (refused while addresses are in use), then its Docker network.
        A Docker network dockerd refuses is left behind for now (``bridge_name(network) in left_behind``,
        logged) and removed later (``sweep_bridges``): the virtual network is deleted all the same."""
        if name == DEFAULT.name:
            raise Conflict(f"network {name} is built in and cannot be deleted")
        network = await asyncio.to_thread(self.store.delete_network, name)
        await self._remove_bridge(network)
        return network

    async def reserve(self, name: str | None, cidr_text: str | None, owner: str) -> tuple[Network, Allocation]:
        """Pick (creating if asked) the network a container wants and allocate ``owner`` an address on it."""
        cidr = ipam.parse_cidr(cidr_text) if cidr_text is not None else None
        if name is not None:
            ipam.check_name(name)
        elif cidr is not None:
            networks = await asyncio.to_thread(self.store.networks)
            name = next((n.name for n in networks if n.cidr == cidr), ipam.auto_name(cidr))
        else:
            name = DEFAULT.name
        async with self._locks[name]:
            network = await self._named(name, cidr)
            try:
                await self.ensure_bridge(network)
                allocation = await asyncio.to_thread(self.store.allocate, name, owner)
            except BaseException:
                await self._drop_if_unused(network)
                raise
        return network, allocation

    async def release(self, owner: str) -> Allocation | None:
        """Free ``owner``'s address; an implicit network that is left empty goes too."""
        allocation = await asyncio.to_thread(self.store.release, owner)
        if allocation is not None:
            await self.drop_if_empty(allocation.network)
        return allocation

    async def drop_if_empty(self, name: str) -> None:
        """Delete network ``name`` if it is implicit and has no address left in use (after a release
        here, or after another host's addresses were reclaimed)."""
        async with self._locks[name]:
            try:
                network = await asyncio.to_thread(self.store.network, name)
            except NotFound:
                return  # deleted meanwhile (from the CLI)
            await self._drop_if_unused(network)

    async def _drop_if_unused(self, network: Network) -> None:
        if network.implicit and not await asyncio.to_thread(self.store.allocations, network.name):
            await self.delete(network.name)  # a bridge dockerd refuses is recorded for later, not raised

    async def _named(self, name: str, cidr: IPv4Network | None) -> Network:
        try:
            network = await asyncio.to_thread(self.store.network, name)
        except NotFound:
            if cidr is None:
                # 400, not 404: the docker CLI takes a 404 from create for "no such image" and pulls.
                raise InvalidInput(f"network {name} not found: create it with 'powerstrip network create {name} CIDR'") from None
            return await asyncio.to_thread(self.store.create_network, name, cidr, implicit=True, exist_ok=True)
        if cidr is not None and network.cidr != cidr:
            raise Conflict(f"network {name} already exists with {network.cidr}, not {cidr}")
        return network

    async def ensure_bridge(self, network: Network) -> None:
        """Make sure Docker's bridge network for ``network`` exists with the same range."""
        name = bridge_name(network)
        try:
            found = await self.docker.call("GET", f"/networks/{name}")
        except DockerError as exc:
            if exc.status != 404:
                raise
        else:
            subnets = {c.get("Subnet") for c in (found.get("IPAM") or {}).get("Config") or []}
            if str(network.cidr) not in subnets:
                raise Conflict(f"Docker network {name} exists with subnet {', '.join(map(str, subnets))}, not {network.cidr}")
            kernel = (found.get("Options") or {}).get("com.docker.network.bridge.name")
            if self.cluster is not None and network.vni is not None and kernel != kernel_bridge_name(network.vni):
                raise Conflict(f"Docker network {name} was made for another network of that name: remove it (docker network rm {name})")
            return
        spec = {
            "Name": name,
            "CheckDuplicate": True,
            "Driver": "bridge",
            "IPAM": {"Config": [{"Subnet": str(network.cidr), "Gateway": str(network.gateway)}]},
            "Labels": {LABEL_NETWORK: network.name},
        }
        if self.cluster is not None and network.vni is not None:
            spec["Options"] = {
                "com.docker.network.bridge.name": kernel_bridge_name(network.vni),
                "com.docker.network.driver.mtu": str(self.cluster.mtu),
            }
        try:
            await self.docker.call("POST", "/networks/create", body=spec)
        except DockerError as exc:
            if exc.status == 409 and "already exists" in exc.message:
                return  # made concurrently by another process
            if exc.status < 500 and exc.status != 0:
                raise Conflict(f"Docker refused network {network.cidr}: {exc.message}") from None
            raise
        if self.on_bridge is not None:
            await self.on_bridge(network)

    async def bridges(self) -> list[dict]:
        """This host's Docker networks made for virtual networks."""
        return await self.docker.call("GET", "/networks", params={"filters": json.dumps({"label": [LABEL_NETWORK]})}) or []

    async def prune_bridges(self, bridges: list[dict], networks: list[Network]) -> None:
        """Remove ``bridges`` (listed before ``networks`` were read) whose virtual network is gone,
        e.g. deleted on another host; Docker refuses those that still have containers."""
        wanted = {bridge_name(n): n for n in networks}
        for found in bridges:
            current = wanted.get(found["Name"])
            kernel = (found.get("Options") or {}).get("com.docker.network.bridge.name")
            if current is not None and (current.vni is None or kernel == kernel_bridge_name(current.vni)):
                continue
            try:
                await self._delete_docker_network(found["Id"])
                log.info("net: removed Docker network %s (its virtual network is gone)", found["Name"])
            except DockerError as exc:
                if exc.status not in (403, 404, 409):
                    raise

    async def _remove_bridge(self, network: Network) -> bool:
        """Delete Docker's bridge network; ``False`` when dockerd refuses it for now (recorded, logged).

        Under load the daemon may still be detaching a just-removed network-only container: while some
        endpoint is listed on the network, the refusal is retried for up to ``BRIDGE_REMOVAL_SECONDS``.
        When none is listed, the network's endpoint count has drifted (moby#42119) once the short window
        between an endpoint's deletion and the count's decrement has passed (``DRIFT_SECONDS``): only
        dockerd's restart corrects that, so there is no point in waiting. Either way the bridge is then
        recorded in ``left_behind`` for ``sweep_bridges`` and the caller goes on: the virtual network is
        gone from the store already, and a user's delete (or ``docker rm``) is answered at once.
        Other errors (the daemon unreachable) are raised, with the bridge recorded all the same.
        """
        name = bridge_name(network)
        loop = asyncio.get_running_loop()
        started, none_listed_since = loop.time(), None
        while True:
            try:
                await self._delete_docker_network(name)
            except DockerError as exc:
                if exc.status != 404:
                    if exc.status not in _REFUSED:
                        self.left_behind[name] = network.name
                        raise
                    attached = await self._attached(name)
                    if attached is not None:
                        now = loop.time()
                        if attached:
                            none_listed_since, waiting = None, now - started < BRIDGE_REMOVAL_SECONDS
                        else:
                            none_listed_since = none_listed_since or now
                            waiting = now - none_listed_since < DRIFT_SECONDS
                        if waiting:
                            await asyncio.sleep(0.2)
                            continue
                        self.left_behind[name] = network.name
                        self._log_left_behind(network, name, exc, attached)
                        return False
            self.left_behind.pop(name, None)
            return True

    async def _attached(self, name: str) -> list[str] | None:
        """The endpoints dockerd lists on network ``name`` (``None`` if the network is gone)."""
        try:
            found = await self.docker.call("GET", f"/networks/{name}") or {}
        except DockerError as exc:
            if exc.status == 404:
                return None
            found = {}
        return sorted(e.get("Name") or k for k, e in (found.get("Containers") or {}).items())

    @staticmethod
    def _log_left_behind(network: Network, name: str, refused: DockerError, attached: list[str]) -> None:
        """Say why dockerd refuses network ``name``, and what happens next."""
        if attached:
            log.warning("net: virtual network %s is deleted, but its Docker network %s is left behind for now: "
                        "dockerd refuses it (%s), still attached: %s; it is removed when a container goes or at "
                        "the next reconcile", network.name, name, refused.message, ", ".join(attached))
        else:
            log.warning("net: virtual network %s is deleted, but its Docker network %s is left behind for now: "
                        "dockerd refuses it (%s) although no container is attached: its endpoint count drifted "
                        "under concurrent removals (a dockerd bug, moby#42119), which dockerd corrects only when "
                        "it restarts; the gateway removes the network then (every reconcile tries again)",
                        network.name, name, refused.message)

    async def sweep_bridges(self) -> None:
        """One more try (no waiting) at the Docker networks left behind, and on a single host at any bridge
        whose virtual network is gone (left by an earlier run of the gateway, e.g. stopped before a retry
        succeeded). A bridge whose network is wanted again (re-created meanwhile) is kept and forgotten.

        Called on each container destroy event while some are recorded (the container holding a lingering
        endpoint may be the one that went) and on each reconcile (the watcher reconciles when it
        reconnects to a restarted dockerd, which is when dockerd has corrected a drifted endpoint count).
        """
        if self.cluster is None:  # in a cluster the converger prunes bridges of deleted networks itself
            bridges = await self.bridges()  # before the store: a bridge listed has its network stored
            stored = {n.name for n in await asyncio.to_thread(self.store.networks)}
            for found in bridges:
                name, label = found["Name"], (found.get("Labels") or {}).get(LABEL_NETWORK)
                if label and label not in stored and name == f"ps-{label}" and name not in self.left_behind:
                    log.info("net: Docker network %s belongs to no virtual network (left behind earlier): removing it", name)
                    self.left_behind[name] = label
        for name, label in list(self.left_behind.items()):
            async with self._locks[label]:  # never against a reserve that is re-creating that network
                try:
                    await asyncio.to_thread(self.store.network, label)
                except NotFound:
                    pass
                else:
                    self.left_behind.pop(name, None)  # wanted again: the bridge is in use, not left behind
                    continue
                try:
                    await self._delete_docker_network(name)
                except DockerError as exc:
                    if exc.status not in (*_REFUSED, 404):
                        raise
                    if exc.status != 404:
                        log.debug("net: Docker network %s still refused: %s", name, exc.message)
                        continue
                else:
                    log.info("net: removed Docker network %s, left behind earlier (dockerd refused it then)", name)
                self.left_behind.pop(name, None)

    async def _delete_docker_network(self, ref: str) -> None:
        """``DELETE /networks/{ref}``, first clearing endpoints the daemon kept for containers now gone.

        dockerd sometimes keeps an endpoint of a container removed while others on the same network were
        being removed (moby#17217, moby#33156), and then refuses the network for ever with "has active
        endpoints" although no container uses it. Its own remedy is a forced disconnect by the endpoint's
        name; only endpoints whose container no longer exists are touched.
        """
        try:
            await self.docker.call("DELETE", f"/networks/{ref}")
            return
        except DockerError as exc:
            if exc.status != 403 or "active endpoints" not in exc.message:
                raise
            refused = exc
        if not await self._disconnect_stale_endpoints(ref):
            raise refused
        await self.docker.call("DELETE", f"/networks/{ref}")

    async def _disconnect_stale_endpoints(self, ref: str) -> int:
        """Force-disconnect the endpoints on network ``ref`` whose container is gone; how many there were."""
        found = await self.docker.call("GET", f"/networks/{ref}")
        stale = 0
        for key, endpoint in ((found or {}).get("Containers") or {}).items():
            name = endpoint.get("Name") or key
            if await self._container_exists(key) or await self._container_exists(name):
                continue
            try:
                await self.docker.call("POST", f"/networks/{ref}/disconnect", body={"Container": name, "Force": True})
            except DockerError as exc:
                if exc.status != 404:
                    raise
            log.warning("net: dockerd kept endpoint %s of a removed container on %s; disconnected it", name, found.get("Name", ref))
            stale += 1
        return stale

    async def _container_exists(self, ref: str) -> bool:
        try:
            await self.docker.call("GET", f"/containers/{ref}/json")
        except DockerError as exc:
            if exc.status == 404:
                return False
            raise
        return True

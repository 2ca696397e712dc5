"""Keeps this host in the cluster and its kernel in step with the cluster store.

Three loops: the membership lease (granted on start, kept alive every third of its TTL, granted
again when it expired, e.g. after a long store outage); a watch on the store's keys (any change
wakes the converger at once); and the converger itself, which re-reads members, networks and
addresses and hands the wanted state to ``Overlay`` (on every change, and every ``resync``
seconds, so a watch lost with the store costs at most that long). A restart of powerstrip is just
another first pass: the store still has every address, missing kernel devices are rebuilt. Each
pass also does the store's housekeeping (``housekeeping.look_after``: lost hosts, half-done deletes).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable

from powerstrip.adapters.net.etcd_store import PREFIX, EtcdStore
from powerstrip.adapters.net.housekeeping import LOST_HOST_GRACE, look_after
from powerstrip.adapters.net.model import Allocation, Network, StoreUnavailable
from powerstrip.adapters.net.names import NameService
from powerstrip.adapters.net.networks import VirtualNetworks
from powerstrip.adapters.net.overlay import Overlay, Segment, container_mac

log = logging.getLogger(__name__)

LEASE_TTL = 10


class Converger:
    def __init__(self, networks: VirtualNetworks, store: EtcdStore, overlay: Overlay, lease_ttl: int = LEASE_TTL,
                 resync: float = 3.0, lost_host_grace: float = LOST_HOST_GRACE,
                 names: NameService | None = None) -> None:
        self.networks = networks
        self.store = store
        self.overlay = overlay
        self.lease_ttl = lease_ttl
        self.resync = resync
        self.lost_host_grace = lost_host_grace
        self.names = names
        # Called after this host (re)joined: its allocations may have been reclaimed while it was away.
        self.on_join: Callable[[], Awaitable[None]] | None = None
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._lease: int | None = None
        self._cancel_watch: list[Callable[[], None]] = []

    async def run(self) -> None:
        # No leave on the way out: a restart re-joins before the lease runs out, so the peers keep
        # their tunnels to this host's containers (which go on running) all along.
        try:
            await asyncio.gather(self._keep_membership(), self._converge(), self._watch())
        finally:
            for cancel in self._cancel_watch:
                cancel()
            if self.names is not None:
                self.names.close()

    async def sync(self) -> None:
        """Program the kernel from the store now (also called right after a local bridge appears)."""
        async with self._lock:
            bridges = await self.networks.bridges()  # before the store: a bridge listed has its network stored
            networks, allocations, emptied = await asyncio.to_thread(self._sync)
            await self.networks.prune_bridges(bridges, networks)
            if self.names is not None:
                self.names.update(networks, allocations)
                await self.names.listen()
        for name in emptied:  # implicit networks whose last addresses were a lost host's go with them
            await self.networks.drop_if_empty(name)

    def _sync(self) -> tuple[list[Network], list[Allocation], set[str]]:
        self.store.ensure_seed()
        members = {m.address for m in self.store.members()}
        allocations = self.store.allocations()
        done = look_after(self.store, members, allocations, self.lost_host_grace)
        if done.reclaimed or done.deleted:
            allocations = self.store.allocations()
        networks = self.store.networks()
        peers = frozenset(members - {self.store.host})
        self.overlay.converge(_segment(n, peers, allocations) for n in networks if n.vni is not None)
        return networks, allocations, {a.network for a in done.reclaimed}

    async def _keep_membership(self) -> None:
        while True:
            try:
                if self._lease is None or not await asyncio.to_thread(self.store.keep_alive, self._lease):
                    self._lease = await asyncio.to_thread(self.store.join, self.lease_ttl)
                    log.info("net: joined the cluster as %s", self.store.host)
                    if self.on_join is not None:
                        try:
                            await self.on_join()
                        except Exception:  # noqa: BLE001 - the watcher's periodic reconcile tries again
                            log.exception("net: reconciling after joining failed")
            except StoreUnavailable as exc:
                log.warning("net: cluster membership: %s (retrying)", exc.message)
            await asyncio.sleep(self.lease_ttl / 3)

    async def _converge(self) -> None:
        while True:
            try:
                await self.sync()
            except StoreUnavailable as exc:
                log.warning("net: converging: %s (the kernel keeps its last state)", exc.message)
                for cancel in self._cancel_watch:
                    cancel()  # the watch went with the store: start a new one
            except Exception:  # noqa: BLE001 - a supervision loop: log and try again
                log.exception("net: converging failed")
            try:
                await asyncio.wait_for(self._changed.wait(), self.resync)
            except TimeoutError:
                pass
            self._changed.clear()

    async def _watch(self) -> None:
        """Wake the converger on every change under the store's prefix.

        The watch is made and followed in a daemon thread of its own: its HTTP stream has no
        timeout, and a thread of the loop's executor that hangs on it would hold up the shutdown.
        """
        loop = asyncio.get_running_loop()
        while True:
            done = asyncio.Event()

            def follow() -> None:
                try:
                    events, cancel = self.store.etcd.watch(PREFIX)
                    self._cancel_watch[:] = [cancel]
                    for _ in events:
                        _notify(loop, self._changed.set)
                except Exception as exc:  # noqa: BLE001 - unreachable store: the resync covers the gap
                    log.debug("net: watching the cluster store: %s", exc)
                finally:
                    _notify(loop, done.set)

            threading.Thread(target=follow, name="powerstrip-etcd-watch", daemon=True).start()
            try:
                await done.wait()
            finally:
                for cancel in self._cancel_watch:
                    cancel()
            await asyncio.sleep(self.resync)  # a store that refuses watches is not asked in a tight loop


def _notify(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:  # the loop is closed: powerstrip is shutting down
        pass


def _segment(network: Network, peers: frozenset[str], allocations: list) -> Segment:
    remote = {container_mac(a.address): a.host for a in allocations if a.network == network.name and a.host in peers}
    return Segment(network.vni, network.gateway, peers, remote)

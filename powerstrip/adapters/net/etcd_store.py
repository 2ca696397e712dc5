"""The cluster store: networks, VNIs, addresses and host membership in etcd.

Keys (under ``/powerstrip/net/``)::

    networks/NAME            {"cidr", "gateway", "implicit", "vni", "deleting"}
    catalog                  rewritten by every network create: creates compare it, so two hosts
                             never add overlapping ranges or the same VNI at once
    addresses/NAME/ADDRESS   OWNER            one key per address in use: an address exists once
    allocations/OWNER        {"network", "address", "created", "container", "container_name", "host"}
    members/ADDRESS          {"address", "joined", "gateway"}, attached to the host's lease
    lost/ADDRESS             {"since"}: a host with allocations and no lease, noticed by another host at
                             ``since`` (wall clock); its addresses are reclaimed after the grace period

Every change is one transaction that compares what it read (compare-and-swap) and is retried
when another host got there first. An address is taken by creating its key (the transaction
fails if it exists), so allocators on different addresses never wait for each other. Which
address to try comes from what this host last read of the network (at most ``VIEW_SECONDS`` old,
re-read after every collision): the lowest free one, or after a collision one of the lowest few
at random. That view is only a hint (unlike Socketplane's cache): the transaction decides.
An allocation also requires its network's key to be unchanged, and deleting a network first
marks it (which changes that key), then checks that no address is in use: an address is never
handed out on a network that is being deleted.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from powerstrip.adapters.net import ipam
from powerstrip.adapters.net.etcd_client import Etcd, KeyValue, delete, put, unchanged
from powerstrip.adapters.net.model import Allocation, Conflict, Network, NotFound, StoreUnavailable

PREFIX = "/powerstrip/net/"
NETWORKS = PREFIX + "networks/"
ADDRESSES = PREFIX + "addresses/"
ALLOCATIONS = PREFIX + "allocations/"
MEMBERS = PREFIX + "members/"
LOST = PREFIX + "lost/"
CATALOG = PREFIX + "catalog"
VNI_FIRST, VNI_LAST = 4096, (1 << 24) - 1  # leave the low VNIs to hand-made tunnels
VIEW_SECONDS = 2.0  # how long an allocator trusts what it read of a network's addresses
ATTEMPTS = 500  # compare-and-swap rounds before giving up (each loser retries at once, with jitter)
RECLAIM_BATCH = 50  # allocations freed per transaction (2 operations each; etcd allows 128 by default)


@dataclass(slots=True)
class _View:
    """A network's key and its addresses in use, as read at ``read`` (monotonic seconds)."""

    network: KeyValue
    taken: set[IPv4Address]
    read: float


@dataclass(frozen=True, slots=True)
class Member:
    """A host in the cluster: its underlay address, when it joined, and its lease's remaining seconds."""

    address: str
    joined: float
    ttl: int
    gateway: str | None = None  # the URL its powerstrip gateway advertises (``--advertise-gateway``)


class EtcdStore:
    """``Store`` on an etcd cluster for the host ``host`` (its underlay address)."""

    def __init__(self, etcd: Etcd, host: str, seed: Iterable[Network] = (), gateway: str | None = None) -> None:
        self.etcd = etcd
        self.host = host
        self.gateway = gateway
        self._seed = list(seed)
        self._views: dict[str, _View] = {}
        self._views_lock = threading.Lock()

    def ensure_seed(self) -> None:
        """Add the seed networks (``default``) when missing; every host does, the first one wins.

        Once done it is not asked again: a seed network cannot be deleted."""
        while self._seed:
            network = self._seed[0]
            self.create_network(network.name, network.cidr, implicit=network.implicit, exist_ok=True)
            self._seed.pop(0)

    # -- networks ------------------------------------------------------------------------------
    def create_network(self, name: str, cidr: IPv4Network, *, implicit: bool = False, exist_ok: bool = False) -> Network:
        for _ in _rounds():
            catalog = self.etcd.get(CATALOG)
            _, kvs = self.etcd.range(NETWORKS)
            existing = [_network(kv) for kv in kvs]
            present = ipam.admit_network(name, cidr, existing, exist_ok)
            if present is not None:
                return present
            used = {n.vni for n in existing}
            vni = next(v for v in range(VNI_FIRST, VNI_LAST + 1) if v not in used)
            network = Network(name, cidr, ipam.gateway_of(cidr), implicit, vni)
            key = NETWORKS + name
            if self.etcd.txn(
                [unchanged(CATALOG, catalog.mod_revision if catalog else 0), unchanged(key, 0)],
                [put(key, _network_json(network)), put(CATALOG, name)],
            ):
                return network
        raise _contended(f"creating network {name}")

    def network(self, name: str) -> Network:
        kv = self.etcd.get(NETWORKS + name)
        if kv is None:
            raise NotFound(f"network {name} not found")
        return _network(kv)

    def networks(self) -> list[Network]:
        return sorted((_network(kv) for kv in self.etcd.range(NETWORKS)[1]), key=lambda n: n.name)

    def delete_network(self, name: str) -> Network:
        key = NETWORKS + name
        for _ in _rounds():
            kv = self.etcd.get(key)
            if kv is None:
                raise NotFound(f"network {name} not found")
            network, record = _network(kv), json.loads(kv.value)
            mark = {**record, "deleting": True, "deleting_since": time.time()}
            if not self.etcd.txn([unchanged(key, kv.mod_revision)], [put(key, json.dumps(mark))]):
                continue  # an allocation or another delete came first
            marked = self.etcd.get(key)
            assert marked is not None  # only a delete removes it, and a delete marks first
            users = self.allocations(name)
            if users:
                self.etcd.txn([unchanged(key, marked.mod_revision)], [put(key, json.dumps(_unmarked(record)))])
                listed = ", ".join(a.container_name or a.container or a.owner for a in users)
                raise Conflict(f"network {name} has {len(users)} attached container(s): {listed}")
            if self.etcd.txn([unchanged(key, marked.mod_revision)], [delete(key)]):
                return network
        raise _contended(f"deleting network {name}")

    def interrupted_deletes(self, older_than: float) -> list[str]:
        """Networks marked for deletion more than ``older_than`` seconds ago (a delete takes milliseconds)."""
        now, found = time.time(), []
        for kv in self.etcd.range(NETWORKS)[1]:
            record = json.loads(kv.value)
            if record.get("deleting") and now - float(record.get("deleting_since", 0.0)) >= older_than:
                found.append(kv.key.removeprefix(NETWORKS))
        return found

    def finish_interrupted_delete(self, name: str, older_than: float) -> str | None:
        """A network marked for deletion longer than ``older_than`` seconds ago (its deleter died between
        the two steps): delete it if no address is in use, else take the mark away. Says which, or
        ``None`` when there was nothing to do (no mark, a recent one, or another host changed it first)."""
        key = NETWORKS + name
        kv = self.etcd.get(key)
        record = json.loads(kv.value) if kv else {}
        if kv is None or not record.get("deleting"):
            return None
        if time.time() - float(record.get("deleting_since", 0.0)) < older_than:
            return None  # a delete in progress
        if self.allocations(name):
            done = self.etcd.txn([unchanged(key, kv.mod_revision)], [put(key, json.dumps(_unmarked(record)))])
            return "rolled back" if done else None
        return "finished" if self.etcd.txn([unchanged(key, kv.mod_revision)], [delete(key)]) else None

    # -- addresses -----------------------------------------------------------------------------
    def allocate(self, network: str, owner: str) -> Allocation:
        fresh = collided = False
        for _ in _rounds():
            view = self._view(network, fresh)
            found = _network(view.network)
            with self._views_lock:
                taken = set(view.taken)
            try:
                if json.loads(view.network.value).get("deleting"):
                    raise Conflict(f"network {network} is being deleted")
                address = _one_of_the_lowest_free(found, taken) if collided else ipam.first_free(found, taken)
            except Conflict:  # full or going away, as far as this view knows: make sure
                if fresh:
                    raise
                fresh = True
                continue
            allocation = Allocation(network, address, owner, time.time(), host=self.host)
            address_key, owner_key = f"{ADDRESSES}{network}/{address}", ALLOCATIONS + owner
            if self.etcd.txn(
                [unchanged(view.network.key, view.network.mod_revision), unchanged(address_key, 0), unchanged(owner_key, 0)],
                [put(address_key, owner), put(owner_key, _allocation_json(allocation))],
            ):
                with self._views_lock:
                    view.taken.add(address)
                return allocation
            fresh = collided = True  # another host took it, or the network changed: read again
        raise _contended(f"allocating an address on {network}")

    def _view(self, network: str, fresh: bool) -> _View:
        """What this host last read of ``network`` and its addresses: re-read after a collision and
        when older than ``VIEW_SECONDS``. Only a hint: the transaction decides."""
        with self._views_lock:
            view = self._views.get(network)
        if view is not None and not fresh and time.monotonic() - view.read < VIEW_SECONDS:
            return view
        kv = self.etcd.get(NETWORKS + network)
        if kv is None:
            raise NotFound(f"network {network} not found")
        _, used = self.etcd.range(f"{ADDRESSES}{network}/", keys_only=True)
        view = _View(kv, {IPv4Address(u.key.rpartition("/")[2]) for u in used}, time.monotonic())
        with self._views_lock:
            self._views[network] = view
        return view

    def adopt(self, network: str, address: IPv4Address, owner: str, container: str,
              container_name: str | None) -> Allocation | None:
        """Record ``owner`` (bound to ``container``) at ``address`` again: a returning host's container
        whose allocation was reclaimed while the host was lost. ``None`` when ``owner`` is recorded
        already (nothing to adopt); raises ``Conflict`` when the address is taken or the network is
        being deleted, ``NotFound`` when the network is gone."""
        for _ in _rounds():
            kv = self.etcd.get(NETWORKS + network)
            if kv is None:
                raise NotFound(f"network {network} not found")
            found = _network(kv)
            if json.loads(kv.value).get("deleting"):
                raise Conflict(f"network {network} is being deleted")
            if address not in found.cidr or address == found.gateway:
                raise Conflict(f"address {address} is not a host address of {network} ({found.cidr})")
            allocation = Allocation(network, address, owner, time.time(), container, container_name, self.host)
            address_key, owner_key = f"{ADDRESSES}{network}/{address}", ALLOCATIONS + owner
            if self.etcd.txn(
                [unchanged(kv.key, kv.mod_revision), unchanged(address_key, 0), unchanged(owner_key, 0)],
                [put(address_key, owner), put(owner_key, _allocation_json(allocation))],
            ):
                return allocation
            if self.etcd.get(owner_key) is not None:
                return None
            holder = self.etcd.get(address_key)
            if holder is not None:
                raise Conflict(f"address {address} on {network} is taken by {holder.value.decode()}")
        raise _contended(f"re-adopting {owner}")

    def bind(self, owner: str, container: str, container_name: str | None) -> None:
        for _ in _rounds():
            kv = self.etcd.get(ALLOCATIONS + owner)
            if kv is None:
                raise NotFound(f"no address is allocated to {owner}")
            allocation = _allocation(kv)
            bound = Allocation(allocation.network, allocation.address, owner, allocation.created,
                               container, container_name, allocation.host)
            if self.etcd.txn([unchanged(kv.key, kv.mod_revision)], [put(kv.key, _allocation_json(bound))]):
                return
        raise _contended(f"binding {owner}")

    def release(self, owner: str) -> Allocation | None:
        for _ in _rounds():
            kv = self.etcd.get(ALLOCATIONS + owner)
            if kv is None:
                return None
            allocation = _allocation(kv)
            address_key = f"{ADDRESSES}{allocation.network}/{allocation.address}"
            if self.etcd.txn([unchanged(kv.key, kv.mod_revision)], [delete(kv.key), delete(address_key)]):
                with self._views_lock:
                    view = self._views.get(allocation.network)
                    if view is not None:
                        view.taken.discard(allocation.address)
                return allocation
        raise _contended(f"releasing {owner}")

    def allocations(self, network: str | None = None) -> list[Allocation]:
        found = (_allocation(kv) for kv in self.etcd.range(ALLOCATIONS)[1])
        return sorted((a for a in found if network in (None, a.network)), key=lambda a: (a.network, a.address))

    # -- members -------------------------------------------------------------------------------
    def join(self, ttl: int) -> int:
        """Announce this host under a new lease of ``ttl`` seconds; returns the lease."""
        lease = self.etcd.grant(ttl)
        record = json.dumps({"address": self.host, "joined": time.time(), "gateway": self.gateway})
        self.etcd.txn([], [put(MEMBERS + self.host, record, lease), delete(LOST + self.host)])
        return lease

    def keep_alive(self, lease: int) -> bool:
        """Refresh the membership lease; ``False`` when it had expired (the host must join again)."""
        return self.etcd.keep_alive(lease) > 0 and self.etcd.get(MEMBERS + self.host) is not None

    def members(self, with_ttl: bool = False) -> list[Member]:
        """The hosts whose lease is alive; ``with_ttl`` asks etcd for each lease's remaining time."""
        found = []
        for kv in self.etcd.range(MEMBERS)[1]:
            record = json.loads(kv.value)
            ttl = self.etcd.time_to_live(kv.lease) if with_ttl and kv.lease else -1
            found.append(Member(record["address"], float(record["joined"]), ttl, record.get("gateway")))
        return sorted(found, key=lambda m: IPv4Address(m.address))


    # -- lost hosts ----------------------------------------------------------------------------
    def lost(self) -> dict[str, float]:
        """The hosts noticed lost: underlay address → when first noticed (wall clock)."""
        return {kv.key.removeprefix(LOST): float(json.loads(kv.value)["since"]) for kv in self.etcd.range(LOST)[1]}

    def note_lost(self, host: str, since: float) -> bool:
        """Record that ``host`` has no lease (only if it still has none and nobody noted it first)."""
        return self.etcd.txn([unchanged(LOST + host, 0), unchanged(MEMBERS + host, 0)],
                             [put(LOST + host, json.dumps({"since": since}))])

    def forget_lost(self, host: str) -> None:
        """``host`` has nothing left to reclaim (or never had): drop its mark."""
        self.etcd.txn([], [delete(LOST + host)])

    def reclaim(self, host: str) -> list[Allocation]:
        """Free every address of the lost ``host``, in transactions that each hold only while it has
        no lease: if it comes back meanwhile, it keeps what is left. Returns what was freed."""
        freed: list[Allocation] = []
        for _ in _rounds():
            mine = [(kv, _allocation(kv)) for kv in self.etcd.range(ALLOCATIONS)[1]]
            mine = [(kv, a) for kv, a in mine if a.host == host][:RECLAIM_BATCH]
            if not mine:
                self.etcd.txn([unchanged(MEMBERS + host, 0)], [delete(LOST + host)])
                return freed
            compare = [unchanged(MEMBERS + host, 0)] + [unchanged(kv.key, kv.mod_revision) for kv, _ in mine]
            success = [op for _, a in mine for op in (delete(ALLOCATIONS + a.owner),
                                                      delete(f"{ADDRESSES}{a.network}/{a.address}"))]
            if self.etcd.txn(compare, success):
                freed += [a for _, a in mine]
                with self._views_lock:
                    for _, a in mine:
                        view = self._views.get(a.network)
                        if view is not None:
                            view.taken.discard(a.address)
            elif self.etcd.get(MEMBERS + host) is not None:
                return freed  # it is back: what it still has is its own
        raise _contended(f"reclaiming the addresses of {host}")


def _unmarked(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("deleting", "deleting_since")}


def _one_of_the_lowest_free(network: Network, taken: set[IPv4Address], among: int = 16) -> IPv4Address:
    """After a collision: spread the allocators that collided over the lowest free addresses."""
    return random.choice(ipam.lowest_free(network, taken, among))


def _rounds() -> Iterable[int]:
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, min(0.05, 0.002 * attempt)))  # losers spread out
        yield attempt


def _contended(what: str) -> StoreUnavailable:
    return StoreUnavailable(f"{what}: the cluster store stayed contended for {ATTEMPTS} attempts, try again")


def _network_json(network: Network) -> str:
    return json.dumps({"cidr": str(network.cidr), "gateway": str(network.gateway),
                       "implicit": network.implicit, "vni": network.vni})


def _network(kv: KeyValue) -> Network:
    record = json.loads(kv.value)
    return Network(kv.key.removeprefix(NETWORKS), IPv4Network(record["cidr"]), IPv4Address(record["gateway"]),
                   bool(record["implicit"]), record["vni"])


def _allocation_json(allocation: Allocation) -> str:
    return json.dumps({"network": allocation.network, "address": str(allocation.address), "created": allocation.created,
                       "container": allocation.container, "container_name": allocation.container_name,
                       "host": allocation.host})


def _allocation(kv: KeyValue) -> Allocation:
    r = json.loads(kv.value)
    return Allocation(r["network"], IPv4Address(r["address"]), kv.key.removeprefix(ALLOCATIONS), float(r["created"]),
                      r["container"], r["container_name"], r["host"])

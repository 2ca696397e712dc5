"""The etcd store against a real etcd (on loopback): atomic allocation from several processes,
cluster-wide VNIs, leases, failover between endpoints, and a clear error when etcd is away."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from ipaddress import IPv4Network

import pytest

from harness.etcd import EtcdServer, free_port
from powerstrip.adapters.net.etcd_client import Etcd
from powerstrip.adapters.net.etcd_store import EtcdStore
from powerstrip.adapters.net.model import Conflict, NotFound, StoreUnavailable
from powerstrip.adapters.net.networks import DEFAULT

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server() -> Iterator[EtcdServer]:
    with EtcdServer() as s:
        yield s


@pytest.fixture
def store(server: EtcdServer) -> Iterator[EtcdStore]:
    made = EtcdStore(Etcd(((server.host, server.port),)), "198.18.0.2", seed=[DEFAULT])
    made.ensure_seed()
    yield made
    for allocation in made.allocations():
        made.release(allocation.owner)
    for network in made.networks():
        made.delete_network(network.name)


def _allocate_many(endpoint: tuple[str, int], host: str, count: int) -> list[str]:
    store = EtcdStore(Etcd((endpoint,)), host)
    return [str(store.allocate("busy", f"{host}-{i}").address) for i in range(count)]


def test_concurrent_allocators_in_several_processes_never_share_an_address(store: EtcdStore, server: EtcdServer) -> None:
    store.create_network("busy", IPv4Network("10.9.0.0/24"))
    hosts = [f"198.18.0.{i}" for i in range(2, 6)]
    with ProcessPoolExecutor(4) as pool:
        results = list(pool.map(_allocate_many, [(server.host, server.port)] * 4, hosts, [25] * 4))
    addresses = [a for chunk in results for a in chunk]
    assert len(addresses) == 100 and len(set(addresses)) == 100
    assert {str(a.address) for a in store.allocations("busy")} == set(addresses)
    assert {a.host for a in store.allocations("busy")} == set(hosts)
    with pytest.raises(Conflict, match="has 100 attached"):
        store.delete_network("busy")


def test_a_full_network_is_refused(store: EtcdStore) -> None:
    store.create_network("tiny", IPv4Network("10.9.1.0/30"))
    store.allocate("tiny", "one")
    with pytest.raises(Conflict, match="is full"):
        store.allocate("tiny", "two")
    assert store.release("one") is not None and store.release("one") is None
    assert store.allocate("tiny", "two").address == IPv4Network("10.9.1.0/30")[2]


def test_concurrent_network_creates_get_distinct_vnis_and_no_overlaps(store: EtcdStore, server: EtcdServer) -> None:
    def create(i: int) -> object:
        other = EtcdStore(Etcd(((server.host, server.port),)), f"198.18.0.{i}")
        try:
            return other.create_network(f"n{i}", IPv4Network(f"10.20.{i // 2}.0/24"))  # pairs overlap
        except Conflict as exc:
            return exc

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(create, range(10)))
    created = [r for r in results if not isinstance(r, Conflict)]
    assert len(created) == 5  # of each overlapping pair, exactly one
    vnis = [n.vni for n in store.networks()]
    assert len(vnis) == len(set(vnis)) == 6  # with default's


def test_bind_and_delete_rules(store: EtcdStore) -> None:
    store.create_network("web", IPv4Network("10.9.2.0/24"))
    allocation = store.allocate("web", "holder")
    store.bind("holder", "c0ffee", "web1")
    (bound,) = store.allocations("web")
    assert (bound.address, bound.container, bound.container_name, bound.host) == (
        allocation.address, "c0ffee", "web1", "198.18.0.2")
    with pytest.raises(NotFound):
        store.bind("nobody", "x", None)
    with pytest.raises(Conflict, match="web1"):
        store.delete_network("web")
    store.release("holder")
    assert store.delete_network("web").name == "web"
    with pytest.raises(NotFound):
        store.network("web")


def test_membership_lease_expires_without_keep_alive(store: EtcdStore) -> None:
    lease = store.join(2)
    assert [m.address for m in store.members()] == ["198.18.0.2"]
    assert store.keep_alive(lease)
    time.sleep(3.5)
    assert store.members() == [] and not store.keep_alive(lease)


def test_failover_to_the_next_endpoint(server: EtcdServer) -> None:
    dead = ("127.0.0.1", free_port())
    store = EtcdStore(Etcd((dead, (server.host, server.port))), "198.18.0.2", seed=[DEFAULT])
    store.ensure_seed()
    assert store.network("default").cidr == DEFAULT.cidr


def test_unreachable_store_is_a_clear_503() -> None:
    store = EtcdStore(Etcd((("127.0.0.1", free_port()),)), "198.18.0.2")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        store.allocate("default", "x")
    assert caught.value.status == 503
    assert "unreachable: connection refused" in caught.value.message
    assert time.monotonic() - started < 5


def test_what_a_host_last_read_is_only_a_hint(store: EtcdStore, server: EtcdServer) -> None:
    other = EtcdStore(Etcd(((server.host, server.port),)), "198.18.0.3")
    store.create_network("pair", IPv4Network("10.9.3.0/29"))  # .2 to .6
    assert str(store.allocate("pair", "a").address) == "10.9.3.2"
    assert str(other.allocate("pair", "b").address) == "10.9.3.3"
    # store's view still has .3 free: the transaction refuses it and store reads again
    assert str(store.allocate("pair", "c").address) in {"10.9.3.4", "10.9.3.5", "10.9.3.6"}
    other.allocate("pair", "d")
    other.allocate("pair", "e")
    with pytest.raises(Conflict, match="is full"):
        store.allocate("pair", "f")
    other.release("b")  # freed by another host: store's view says full, a fresh read does not
    assert str(store.allocate("pair", "f").address) == "10.9.3.3"
    addresses = [a.address for a in store.allocations("pair")]
    assert len(addresses) == len(set(addresses)) == 5

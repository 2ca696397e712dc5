import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from powerstrip.adapters.net.model import Allocation, Conflict, NotFound
from powerstrip.adapters.net.networks import DEFAULT
from powerstrip.adapters.net.sqlite_store import SqliteStore


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "state" / "net.sqlite3", seed=[DEFAULT])


def test_seeded_default_network_exists_from_the_start(store: SqliteStore) -> None:
    assert store.networks() == [DEFAULT]
    assert store.network("default").gateway == IPv4Address("10.1.0.1")


def test_seed_does_not_replace_or_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "net.sqlite3"
    SqliteStore(path, seed=[DEFAULT]).allocate("default", "a")
    again = SqliteStore(path, seed=[DEFAULT])
    assert again.networks() == [DEFAULT]
    assert [a.owner for a in again.allocations()] == ["a"]


def test_create_network_sets_gateway_and_persists(tmp_path: Path, store: SqliteStore) -> None:
    web = store.create_network("web", IPv4Network("10.0.6.0/24"))
    assert (web.gateway, web.implicit) == (IPv4Address("10.0.6.1"), False)
    reopened = SqliteStore(store.path)
    assert reopened.network("web") == web


def test_name_clash_and_overlap_are_refused(store: SqliteStore) -> None:
    store.create_network("web", IPv4Network("10.0.6.0/24"))
    with pytest.raises(Conflict, match=r"network web already exists \(10.0.6.0/24\)"):
        store.create_network("web", IPv4Network("10.0.7.0/24"))
    with pytest.raises(Conflict, match=r"10.0.6.0/25 overlaps network web \(10.0.6.0/24\)"):
        store.create_network("other", IPv4Network("10.0.6.0/25"))
    with pytest.raises(Conflict, match="overlaps network default"):
        store.create_network("other", IPv4Network("10.1.2.0/24"))


def test_exist_ok_returns_the_same_network_only(store: SqliteStore) -> None:
    first = store.create_network("a", IPv4Network("10.0.6.0/24"), implicit=True, exist_ok=True)
    assert store.create_network("a", IPv4Network("10.0.6.0/24"), implicit=True, exist_ok=True) == first
    with pytest.raises(Conflict):
        store.create_network("a", IPv4Network("10.0.8.0/24"), exist_ok=True)


def test_allocate_bind_release(store: SqliteStore) -> None:
    store.create_network("web", IPv4Network("10.0.6.0/24"))
    first = store.allocate("web", "ps-net-1")
    second = store.allocate("web", "ps-net-2")
    assert (first.address, second.address) == (IPv4Address("10.0.6.2"), IPv4Address("10.0.6.3"))
    assert first.container is None
    store.bind("ps-net-1", "c1", "one")
    assert store.allocations("web")[0].container == "c1"
    assert store.release("ps-net-1") == Allocation("web", first.address, "ps-net-1", first.created, "c1", "one")
    assert store.release("ps-net-1") is None
    assert store.allocate("web", "ps-net-3").address == IPv4Address("10.0.6.2")  # freed addresses are reused


def test_owner_is_unique_and_unknown_ones_are_refused(store: SqliteStore) -> None:
    store.allocate("default", "x")
    with pytest.raises(Exception, match="UNIQUE"):
        store.allocate("default", "x")
    with pytest.raises(NotFound):
        store.bind("nobody", "c", None)
    with pytest.raises(NotFound, match="network nope not found"):
        store.allocate("nope", "y")


def test_full_network_is_refused(store: SqliteStore) -> None:
    store.create_network("tiny", IPv4Network("10.0.9.0/30"))  # one usable address besides the gateway
    assert store.allocate("tiny", "a").address == IPv4Address("10.0.9.2")
    with pytest.raises(Conflict, match="is full"):
        store.allocate("tiny", "b")


def test_delete_refused_while_in_use_listing_containers(store: SqliteStore) -> None:
    store.create_network("web", IPv4Network("10.0.6.0/24"))
    store.allocate("web", "ps-net-1")
    store.bind("ps-net-1", "abc", "powerstrip-test1")
    with pytest.raises(Conflict, match="network web has 1 attached container.*powerstrip-test1"):
        store.delete_network("web")
    store.release("ps-net-1")
    assert store.delete_network("web").name == "web"
    with pytest.raises(NotFound):
        store.delete_network("web")


def test_fifty_concurrent_allocations_get_distinct_addresses(store: SqliteStore) -> None:
    store.create_network("web", IPv4Network("10.0.6.0/24"))
    with ThreadPoolExecutor(50) as pool:
        allocations = list(pool.map(lambda i: store.allocate("web", f"o{i}"), range(50)))
    addresses = {a.address for a in allocations}
    assert len(addresses) == 50
    assert addresses == {IPv4Address(f"10.0.6.{i}") for i in range(2, 52)}


def _allocate_many(path: Path, prefix: str, count: int) -> list[str]:
    store = SqliteStore(path)
    return [str(store.allocate("default", f"{prefix}{i}").address) for i in range(count)]


def test_processes_sharing_the_file_never_get_the_same_address(store: SqliteStore) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(_allocate_many, [(store.path, f"p{p}-", 25) for p in range(4)])
    addresses = [a for chunk in results for a in chunk]
    assert len(addresses) == len(set(addresses)) == 100

"""The cluster policy store against a real etcd (on loopback): contradicting adds from several hosts
at once store one, deletes, what each host applied, and a clear error when etcd is away."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.etcd import EtcdServer, free_port
from powerstrip.adapters.net.etcd_client import Etcd
from powerstrip.adapters.net.model import Conflict, NotFound, StoreUnavailable
from powerstrip.adapters.qos.policy import parse_policy
from powerstrip.adapters.qos.store import EtcdPolicies

pytestmark = pytest.mark.timeout(120)


def policy(**doc):
    return parse_policy(json.dumps(doc))


@pytest.fixture(scope="module")
def server() -> Iterator[EtcdServer]:
    with EtcdServer() as s:
        yield s


@pytest.fixture
def store(server: EtcdServer) -> Iterator[EtcdPolicies]:
    made = EtcdPolicies(Etcd(((server.host, server.port),)))
    yield made
    for p in made.policies():
        made.delete_policy(p.name)


def test_add_list_delete_and_applied(store: EtcdPolicies) -> None:
    limit = store.add_policy(policy(name="limit-h1", **{"ip-src": "10.0.6.2"}, rate="2mbit"))
    voice = store.add_policy(policy(name="voice", **{"ip-dst": "10.0.6.0/24", "protocol": "udp", "tp-dst": 5060}, dscp="EF"))
    assert store.policies() == [limit, voice]
    with pytest.raises(Conflict, match="already exists"):
        store.add_policy(policy(name="voice", dscp=1))
    assert store.delete_policy("voice") == voice
    with pytest.raises(NotFound):
        store.delete_policy("voice")
    store.record_applied("198.18.0.2", {"limit-h1": {"h1": "applied"}})
    store.record_applied("198.18.0.3", {"limit-h1": {}})
    assert store.applied()["198.18.0.2"] == {"limit-h1": {"h1": "applied"}} and "198.18.0.3" in store.applied()


def test_contradicting_adds_from_several_hosts_store_one(server: EtcdServer, store: EtcdPolicies) -> None:
    candidates = [policy(name=f"p{i}", **{"ip-src": "10.0.6.0/24"}, rate=f"{i + 1}mbit") for i in range(6)]

    def add(p):  # a client of its own each, as on separate hosts
        try:
            return EtcdPolicies(Etcd(((server.host, server.port),))).add_policy(p)
        except Conflict:
            return None

    with ThreadPoolExecutor(6) as pool:
        stored = [p for p in pool.map(add, candidates) if p is not None]
    assert len(stored) == 1 and store.policies() == stored


def test_unreachable_store_is_a_clear_error() -> None:
    away = EtcdPolicies(Etcd((("127.0.0.1", free_port()),), timeout=1.0))
    with pytest.raises(StoreUnavailable):
        away.policies()

"""The single-host policy store: atomic conflict checks, persistence, what hosts applied."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from powerstrip.adapters.net.model import Conflict, NotFound
from powerstrip.adapters.net.networks import DEFAULT, STATE_FILE
from powerstrip.adapters.net.sqlite_store import SqliteStore
from powerstrip.adapters.qos.policy import parse_policy
from powerstrip.adapters.qos.store import SqlitePolicies


def policy(**doc):
    return parse_policy(json.dumps(doc))


def test_policies_share_the_networks_file_and_persist(tmp_path: Path) -> None:
    path = tmp_path / STATE_FILE
    SqliteStore(path, seed=[DEFAULT])
    store = SqlitePolicies(path)
    limit = store.add_policy(policy(name="limit-h1", **{"ip-src": "10.1.0.2"}, rate="2mbit"))
    assert SqlitePolicies(path).policies() == [limit]
    assert SqliteStore(path).networks() == [DEFAULT]  # the net tables are untouched
    with pytest.raises(Conflict, match="already exists"):
        store.add_policy(policy(name="limit-h1", dscp=1))
    assert store.delete_policy("limit-h1") == limit and store.policies() == []
    with pytest.raises(NotFound, match="policy limit-h1 not found"):
        store.delete_policy("limit-h1")


def test_concurrent_contradicting_adds_store_one(tmp_path: Path) -> None:
    store = SqlitePolicies(tmp_path / STATE_FILE)
    candidates = [policy(name=f"p{i}", **{"ip-src": "10.1.0.0/24"}, rate=f"{i + 1}mbit") for i in range(8)]

    def add(p):
        try:
            return store.add_policy(p)
        except Conflict:
            return None

    with ThreadPoolExecutor(8) as pool:
        stored = [p for p in pool.map(add, candidates) if p is not None]
    assert len(stored) == 1 and store.policies() == stored


def test_applied_records_per_host(tmp_path: Path) -> None:
    store = SqlitePolicies(tmp_path / STATE_FILE)
    store.record_applied("local", {"limit-h1": {"h1": "applied"}})
    store.record_applied("local", {"limit-h1": {"h1": "error: x"}})
    assert store.applied() == {"local": {"limit-h1": {"h1": "error: x"}}}

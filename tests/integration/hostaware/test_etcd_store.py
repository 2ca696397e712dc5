"""The etcd store against a real etcd: rules, message ids across writers, retention, lost members."""

from __future__ import annotations

import time

import pytest

from harness.etcd import EtcdServer
from harness.util import wait_until
from powerstrip.adapters.hostaware.etcd_store import EtcdHostStore, HostEtcd
from powerstrip.adapters.hostaware.model import Conflict, HostRecord, Level, Message, NotFound, StoreUnavailable, parse_rule

RULE = parse_rule({"name": "busy", "metric": "load_one", "op": ">", "threshold": 4, "polling": 5, "times": 3,
                   "action": "refuse-create"})


@pytest.fixture(scope="module")
def etcd():
    with EtcdServer() as server:
        yield server


def store(etcd, host: str, **kwargs) -> EtcdHostStore:
    return EtcdHostStore(HostEtcd(((etcd.host, etcd.port),)), host, **kwargs)


def test_rules_are_cluster_wide(etcd):
    a, b = store(etcd, "a"), store(etcd, "b")
    a.add_rule(RULE)
    with pytest.raises(Conflict):
        b.add_rule(RULE)
    assert b.rules() == [RULE]
    assert b.delete_rule("busy") == RULE
    with pytest.raises(NotFound):
        a.delete_rule("busy")


def test_message_ids_increase_across_members_and_old_ones_go(etcd, monkeypatch):
    monkeypatch.setattr("powerstrip.adapters.hostaware.etcd_store.TRIM_EVERY", 1)
    a, b = store(etcd, "a", max_messages=4), store(etcd, "b", max_messages=4)
    for i in range(3):
        a.append([Message(time.time(), Level.INFO, "a", f"a{i}")])
        b.append([Message(time.time(), Level.WARN, "b", f"b{i}")])
    found = a.messages()
    assert [m.text for m in found] == ["a1", "b1", "a2", "b2"]  # trimmed to the newest 4 after each append
    assert [m.id for m in found] == sorted(m.id for m in found) and len({m.id for m in found}) == 4
    assert [m.text for m in a.messages(host="b")][-1] == "b2"
    assert [m.text for m in b.messages(after=found[-2].id)] == [found[-1].text]
    assert [m.text for m in b.messages(limit=1)] == ["b2"]


def test_a_member_whose_lease_expired_is_lost(etcd):
    a = store(etcd, "lost-a", lease_ttl=2)
    a.publish(HostRecord("lost-a", "builtin", time.time(), {"load_one": 1.0}, None, {}))
    listed = {r.name: r for r in store(etcd, "b").hosts()}
    assert not listed["lost-a"].lost and listed["lost-a"].metrics == {"load_one": 1.0}
    wait_until(lambda: {r.name: r for r in store(etcd, "b").hosts()}["lost-a"].lost, 15, 0.5, "the lease to expire")
    a.publish(HostRecord("lost-a", "builtin", time.time(), {}, None, {}))  # back: a new lease
    assert not {r.name: r for r in store(etcd, "b").hosts()}["lost-a"].lost


def test_an_unreachable_store_is_a_clear_error():
    down = EtcdHostStore(HostEtcd((("127.0.0.1", 1),), timeout=1.0), "a")
    with pytest.raises(StoreUnavailable, match="unreachable"):
        down.rules()

"""The SQLite store: rules, messages with their retention, host records and lost hosts."""

from __future__ import annotations

import time

import pytest

from powerstrip.adapters.hostaware.model import Conflict, HostRecord, Level, Message, NotFound, parse_rule
from powerstrip.adapters.hostaware.sqlite_store import SqliteHostStore

RULE = parse_rule({"name": "busy", "metric": "load_one", "op": ">", "threshold": 4, "polling": 5, "times": 3,
                   "action": "refuse-create"})


def test_rules(tmp_path):
    store = SqliteHostStore(tmp_path / "h.db")
    store.add_rule(RULE)
    with pytest.raises(Conflict):
        store.add_rule(RULE)
    assert SqliteHostStore(tmp_path / "h.db").rules() == [RULE]  # another process sees it (and a restart)
    assert store.delete_rule("busy") == RULE
    with pytest.raises(NotFound):
        store.delete_rule("busy")


def test_messages_in_order_filtered_and_bounded(tmp_path):
    store = SqliteHostStore(tmp_path / "h.db", max_messages=5)
    store.append([Message(float(i), Level.INFO, "a" if i % 2 else "b", f"m{i}") for i in range(8)])
    found = store.messages()
    assert [m.text for m in found] == ["m3", "m4", "m5", "m6", "m7"]
    assert [m.text for m in store.messages(host="a")] == ["m3", "m5", "m7"]
    assert [m.text for m in store.messages(after=found[2].id)] == ["m6", "m7"]
    assert [m.text for m in store.messages(limit=1)] == ["m7"]


def test_hosts_and_lost(tmp_path):
    store = SqliteHostStore(tmp_path / "h.db", lost_after=0.2)
    store.publish(HostRecord("h1", "builtin", time.time(), {"load_one": 0.5}, None, {}))
    (record,) = store.hosts()
    assert record.metrics == {"load_one": 0.5} and not record.lost
    time.sleep(0.3)
    assert store.hosts()[0].lost

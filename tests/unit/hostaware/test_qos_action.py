"""The qos:<policy JSON> action against the real QoS stores and engine (SQLite, no daemon).

The engine's pass is real: with no container, or a container the daemon stub says is gone, it touches
no kernel state, so what is checked here is what gets stored, scoped, named, owned and removed; the
kernel side with real traffic is tests/integration/hostaware/test_qos_action.py.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from powerstrip.adapters.hostaware.model import InvalidRule, Level, parse_rule
from powerstrip.adapters.hostaware.qos_action import QosAction, check_rule_policy, policy_name
from powerstrip.adapters.net.docker_api import DockerError
from powerstrip.adapters.net.networks import DEFAULT, STATE_FILE, VirtualNetworks
from powerstrip.adapters.net.sqlite_store import SqliteStore
from powerstrip.adapters.qos.engine import Engine
from powerstrip.adapters.qos.policy import LOCAL_HOST, parse_policy, valid_name
from powerstrip.adapters.qos.service import Qos
from powerstrip.adapters.qos.store import SqlitePolicies


class GoneDocker:
    """The daemon as the engine sees it when a container is gone: 404 (a stub: no daemon in unit tests)."""

    async def call(self, method: str, path: str) -> dict:
        raise DockerError(404, f"no such container: {path}")

    async def close(self) -> None:
        pass


def open_qos(tmp_path: Path) -> Qos:
    path = tmp_path / STATE_FILE
    networks = VirtualNetworks(SqliteStore(path, seed=[DEFAULT]), GoneDocker())  # type: ignore[arg-type]
    policies = SqlitePolicies(path)
    return Qos(networks, policies, Engine(networks, policies))


def rule(name: str = "slow", action: str = 'qos:{"rate": "2mbit"}'):
    return parse_rule({"name": name, "metric": "load_one", "op": ">", "threshold": 1, "polling": 1, "times": 1,
                       "action": action})


def test_apply_stores_a_policy_for_this_host_owned_by_the_rule_and_undo_removes_it(tmp_path: Path) -> None:
    qos = open_qos(tmp_path)
    action = QosAction("h1", lambda: qos)
    (said,) = asyncio.run(action.apply(rule()))
    (stored,) = qos.policies.policies()
    assert (stored.name, stored.host, stored.rule, stored.rate.bits) == ("hostaware-slow-h1", LOCAL_HOST, "slow",
                                                                         2_000_000)
    assert stored.describe_owner() == "rule slow"
    assert said.level is Level.INFO and "hostaware-slow-h1" in said.text and "no container" in said.text
    assert qos.policies.applied()[LOCAL_HOST] == {"hostaware-slow-h1": {}}  # the pass ran
    (undone,) = asyncio.run(action.undo(rule()))
    assert undone.level is Level.INFO and "removed" in undone.text
    assert qos.policies.policies() == [] and qos.policies.applied()[LOCAL_HOST] == {}
    assert asyncio.run(action.undo(rule())) == []  # nothing left to undo: no message


def test_the_pass_reports_each_container_the_policy_reaches(tmp_path: Path) -> None:
    qos = open_qos(tmp_path)
    qos.networks.store.allocate("default", "ps-net-1")
    qos.networks.store.bind("ps-net-1", "c" * 64, "web1")
    (said,) = asyncio.run(QosAction("h1", lambda: qos).apply(rule()))
    assert said.level is Level.WARN and "web1: not running" in said.text  # the stub daemon says it is gone


def test_a_conflicting_operator_policy_makes_it_a_warning_and_nothing_is_stored(tmp_path: Path) -> None:
    qos = open_qos(tmp_path)
    qos.policies.add_policy(parse_policy(json.dumps({"name": "all", "rate": "5mbit"})))
    (said,) = asyncio.run(QosAction("h1", lambda: qos).apply(rule()))
    assert said.level is Level.WARN and "not applied" in said.text and "overlaps policy all" in said.text
    assert [p.name for p in qos.policies.policies()] == ["all"]
    with pytest.raises(InvalidRule, match=r"qos:<policy JSON>: it overlaps policy all"):
        check_rule_policy(qos, rule())
    with pytest.raises(InvalidRule, match=r"ip-src 192\.168\.9\.9 is not on a powerstrip network"):
        check_rule_policy(qos, rule(action='qos:{"ip-src": "192.168.9.9", "rate": "2mbit"}'))
    check_rule_policy(qos, rule(action='qos:{"dscp": "EF"}'))  # a mark beside a rate: no conflict


def test_policies_of_one_rule_on_two_hosts_do_not_conflict(tmp_path: Path) -> None:
    qos = open_qos(tmp_path)
    other = parse_policy(json.dumps({"name": "hostaware-slow-198.18.0.3", "rate": "2mbit"}))
    qos.policies.add_policy(replace(other, host="198.18.0.3", rule="slow"))
    (said,) = asyncio.run(QosAction("h1", lambda: qos).apply(rule()))
    assert said.level is Level.INFO, said.text
    assert sorted((p.name, p.host) for p in qos.policies.policies()) == [("hostaware-slow-198.18.0.3", "198.18.0.3"),
                                                                      ("hostaware-slow-h1", LOCAL_HOST)]


def test_sweep_removes_only_this_hosts_leftovers_and_close_removes_what_holds(tmp_path: Path) -> None:
    qos = open_qos(tmp_path)
    asyncio.run(QosAction("h1", lambda: qos).apply(rule()))  # a gateway killed while the rule held
    qos.policies.add_policy(parse_policy(json.dumps({"name": "ops", "dscp": "EF"})))
    action = QosAction("h1", lambda: qos)
    asyncio.run(action.sweep())
    assert [p.name for p in qos.policies.policies()] == ["ops"]  # the operator's policy stays
    asyncio.run(action.apply(rule("again")))
    assert "hostaware-again-h1" in [p.name for p in qos.policies.policies()]
    asyncio.run(action.close())
    assert [p.name for p in qos.policies.policies()] == ["ops"]


def test_apply_replaces_a_leftover_of_the_same_rule_but_never_an_operators_policy(tmp_path: Path) -> None:
    qos = open_qos(tmp_path)
    asyncio.run(QosAction("h1", lambda: qos).apply(rule()))
    (said,) = asyncio.run(QosAction("h1", lambda: qos).apply(rule()))  # no sweep ran: the same name is there
    assert said.level is Level.INFO and len(qos.policies.policies()) == 1
    asyncio.run(QosAction("h1", lambda: qos).undo(rule()))
    qos.policies.add_policy(parse_policy(json.dumps({"name": "hostaware-slow-h1", "dscp": "EF"})))
    (said,) = asyncio.run(QosAction("h1", lambda: qos).apply(rule()))
    assert said.level is Level.WARN and "already exists" in said.text
    assert asyncio.run(QosAction("h1", lambda: qos).undo(rule())) == []  # the clear leaves it alone too
    assert qos.policies.policies()[0].rule is None


def test_a_state_directory_that_cannot_be_used_is_a_warning_not_an_exception(tmp_path: Path) -> None:
    def broken() -> Qos:
        raise PermissionError(13, "Permission denied", str(tmp_path))

    action = QosAction("h1", broken)
    asyncio.run(action.sweep())  # logged
    (said,) = asyncio.run(action.apply(rule()))
    assert said.level is Level.WARN and "Permission denied" in said.text


def test_policy_names_stay_valid_and_one_per_rule_and_host() -> None:
    assert policy_name("busy", "198.18.0.2") == "hostaware-busy-198.18.0.2"
    long = policy_name("r" * 64, "host.example")
    assert valid_name(long) and long == policy_name("r" * 64, "host.example") != policy_name("r" * 64, "other")

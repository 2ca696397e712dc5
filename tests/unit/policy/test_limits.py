"""Concurrency caps and rate limits per profile, and warn-mode warnings, judged by the policy adapter itself
(``PolicyAdapter.pre_hook``) with exchange scopes ended by the test as the gateway would end them."""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from powerstrip.adapters.policy.adapter import PolicyAdapter
from powerstrip.adapters.policy.concurrency import Slots, long_lived
from powerstrip.adapters.policy.loader import PolicyError, parse_policy
from powerstrip.adapters.policy.source import PolicySource
from powerstrip.cli import main
from powerstrip.hooks.model import ClientRequest, HookRejected, Peer
from powerstrip.hooks.scope import ExchangeScope


@pytest.mark.parametrize(("path", "query", "streaming"), [
    ("/events", {}, True), ("/events", {"until": ["1"]}, True),
    ("/containers/x/attach", {"stream": ["1"]}, True), ("/containers/x/attach/ws", {}, True),
    ("/containers/x/wait", {}, True), ("/exec/abc/start", {}, True), ("/session", {}, True), ("/grpc", {}, True),
    ("/containers/x/logs", {}, False), ("/containers/x/logs", {"follow": ["1"]}, True),
    ("/containers/x/logs", {"follow": ["TRUE "]}, True), ("/containers/x/logs", {"follow": ["0"]}, False),
    ("/containers/x/logs", {"follow": ["no"]}, False), ("/services/s/logs", {"follow": ["true"]}, True),
    ("/containers/x/stats", {}, True), ("/containers/x/stats", {"stream": ["false"]}, False),
    ("/containers/x/stats", {"stream": ["0"]}, False),
    ("/containers/json", {}, False), ("/containers/x/stop", {}, False), ("/build", {}, False),
    ("/images/create", {}, False), ("/containers/x/json", {}, False),
])
def test_long_lived_streams(path, query, streaming):
    assert long_lived(path, query) is streaming


def test_a_slot_is_given_back_once():
    slots = Slots()
    first, second = slots.take("p"), slots.take("p")
    assert slots.in_use("p") == 2
    first()
    first()
    assert slots.in_use("p") == 1
    second()
    assert slots.in_use("p") == 0 and slots.counts() == {}


def test_concurrency_in_the_rules_file():
    policy = parse_policy("profiles:\n  - name: a\n    concurrency: 8\n"
                          "  - name: b\n    concurrency: {max: 2, streams: true}\n", "p.yml")
    a, b = policy.profiles
    assert (a.concurrency.max, a.concurrency.streams, a.concurrency.where) == (8, False, "p.yml:3")
    assert (b.concurrency.max, b.concurrency.streams, b.concurrency.where) == (2, True, "p.yml:5")


@pytest.mark.parametrize(("value", "message"), [
    ("0", "concurrency must be a whole number >= 1"), ("2.5", "concurrency must be a whole number >= 1"),
    ("true", "concurrency must be a whole number >= 1"), ("{streams: true}", "concurrency needs 'max'"),
    ("{max: 2, streams: 1}", "expected true or false"), ("{max: 2, cap: 3}", "unknown key 'cap'"),
])
def test_concurrency_errors_name_file_and_line(value, message):
    with pytest.raises(PolicyError) as caught:
        parse_policy(f"profiles:\n  - name: a\n    rules: []\n    concurrency: {value}\n", "p.yml")
    assert any(p.startswith("p.yml:4: ") and message in p for p in caught.value.problems), caught.value.problems


# --- the adapter ----------------------------------------------------------------------------------


def adapter_for(tmp_path: Path, rules: str) -> PolicyAdapter:
    (tmp_path / "policy.yml").write_text(textwrap.dedent(rules))
    return PolicyAdapter("policy", PolicySource(str(tmp_path / "policy.yml")), None)


def judge(adapter: PolicyAdapter, target: str = "/v1.41/containers/x/stop", method: str = "POST",
          scope: ExchangeScope | None = None, dry_run: bool = False) -> ExchangeScope:
    """One request judged in a scope the test ends (the gateway's ``hooked`` does it in a finally)."""
    scope = scope or ExchangeScope(ends=True)
    asyncio.run(adapter.pre_hook(ClientRequest(method, target, None, uid="u", dry_run=dry_run, peer=Peer(uid=0),
                                               scope=scope)))
    return scope


def refused(adapter: PolicyAdapter, target: str = "/v1.41/containers/x/stop") -> HookRejected:
    with pytest.raises(HookRejected) as caught:
        judge(adapter, target)
    return caught.value


CAPPED = """\
    profiles:
      - name: ci
        concurrency: 2
        rules: [{allow: "* /**"}]
    """


def test_the_cap_refuses_with_429_and_a_slot_comes_back_when_its_exchange_ends(tmp_path):
    adapter = adapter_for(tmp_path, CAPPED)
    first, second = judge(adapter), judge(adapter)
    refusal = refused(adapter)
    assert refusal.status == 429 and refusal.message == (
        "policy: profile 'ci' is at its concurrency cap (2 request(s) at a time); try again when one of them ends")
    first.end()
    third = judge(adapter)
    assert adapter.slots.in_use("ci") == 2
    for scope in (second, third):
        scope.end()
    assert adapter.slots.in_use("ci") == 0


def test_long_lived_streams_are_not_counted_unless_the_cap_says_so(tmp_path):
    adapter = adapter_for(tmp_path, CAPPED)
    streams = [judge(adapter, target) for target in ("/v1.41/events", "/v1.41/containers/x/logs?follow=1",
                                                     "/v1.41/containers/x/wait", "/v1.41/containers/x/attach")]
    assert adapter.slots.in_use("ci") == 0 and streams
    judge(adapter), judge(adapter)
    assert refused(adapter, "/v1.41/containers/json").status == 429
    counting = adapter_for(tmp_path, CAPPED.replace("concurrency: 2", "concurrency: {max: 2, streams: true}"))
    judge(counting, "/v1.41/events"), judge(counting, "/v1.41/containers/x/wait")
    assert refused(counting, "/v1.41/containers/x/logs?follow=1").message.startswith(
        "policy: profile 'ci' is at its concurrency cap (2 request(s) at a time, streams included)")


def test_dry_runs_take_no_slot(tmp_path):
    adapter = adapter_for(tmp_path, CAPPED)
    for _ in range(3):
        judge(adapter, dry_run=True)
    assert adapter.slots.in_use("ci") == 0


def test_a_slot_taken_before_a_rules_reload_goes_back_to_the_count(tmp_path):
    now = [0.0]
    (tmp_path / "policy.yml").write_text(textwrap.dedent(CAPPED).replace("concurrency: 2", "concurrency: 1"))
    adapter = PolicyAdapter("policy", PolicySource(str(tmp_path / "policy.yml"), clock=lambda: now[0]), None)
    held = judge(adapter)
    assert refused(adapter).status == 429
    (tmp_path / "policy.yml").write_text(textwrap.dedent(CAPPED))  # now 2 at a time
    now[0] = 5.0
    later = judge(adapter)
    assert refused(adapter).status == 429  # the slot of the old rules still counts
    held.end()
    later.end()
    assert adapter.slots.in_use("ci") == 0


def test_a_refusal_is_in_the_audit_log_with_the_limit_that_made_it(tmp_path, caplog):
    adapter = adapter_for(tmp_path, CAPPED.replace("concurrency: 2", "concurrency: 1\n        rate_limit: {rate: 100}"))
    judge(adapter)
    with caplog.at_level(logging.DEBUG, "powerstrip.policy.audit"):
        refused(adapter)
    entries = [json.loads(r.getMessage()) for r in caplog.records if r.name == "powerstrip.policy.audit"]
    assert len(entries) == 1 and entries[0] == {**entries[0], "decision": "deny", "enforced": True, "profile": "ci",
                                                "limit": "concurrency 1 (long-lived streams not counted)"}
    assert entries[0]["rule"] == f"{tmp_path / 'policy.yml'}:3" and "concurrency cap" in entries[0]["reason"]
    assert [f.name for f in adapter.metric_families()] == ["powerstrip_policy_requests_in_progress",
                                                           "powerstrip_policy_limited"]
    limited = adapter.metric_families()[1].samples
    assert [(s.labels, s.value) for s in limited] == [({"profile": "ci", "limit": "concurrency"}, 1.0)]


def test_rate_limit_refusals_name_their_line_too(tmp_path, caplog):
    adapter = adapter_for(tmp_path, CAPPED.replace("concurrency: 2", "rate_limit: {rate: 0.001, burst: 1}"))
    judge(adapter)
    with caplog.at_level(logging.DEBUG, "powerstrip.policy.audit"):
        assert refused(adapter).status == 429
    entry = json.loads(next(r.getMessage() for r in caplog.records if r.name == "powerstrip.policy.audit"))
    assert entry["rule"].endswith("policy.yml:3") and entry["limit"] == "rate_limit 0.001/s, burst 1"


def test_in_warn_mode_a_request_over_the_cap_is_let_through_with_a_warning(tmp_path):
    adapter = adapter_for(tmp_path, CAPPED.replace("concurrency: 2", "concurrency: 1\n        mode: warn"))
    judge(adapter)
    over = judge(adapter)
    assert over.warnings == ["policy: profile 'ci' is over its concurrency cap (1 request(s) at a time) "
                             "(warn mode: not enforced)"]
    assert adapter.slots.in_use("ci") == 2  # counted: the count stays the truth
    over.end()
    assert adapter.slots.in_use("ci") == 1


def test_a_cap_that_cannot_be_kept_is_not_applied_and_says_so(tmp_path, caplog):
    adapter = adapter_for(tmp_path, CAPPED.replace("concurrency: 2", "concurrency: 1"))
    for _ in range(3):  # served over HTTP: no scope the gateway ends
        judge(adapter, scope=ExchangeScope(ends=False))
    assert adapter.slots.in_use("ci") == 0
    assert caplog.text.count("its concurrency cap cannot be kept") == 1


def test_capped_profiles_take_the_hooked_path(tmp_path):
    adapter = adapter_for(tmp_path, CAPPED)
    assert adapter.judge_path("GET", "/v1.41/_ping", Peer(uid=0)) is None  # the fast path could not count it


def test_warn_mode_decisions_warn_on_every_endpoint(tmp_path):
    adapter = adapter_for(tmp_path, """\
        profiles:
          - name: trial
            mode: warn
            rules:
              - deny: "GET /containers/json"
                reason: lists are being reviewed
              - deny: "GET /images/json"
                mode: audit
              - allow: "* /**"
        """)
    assert judge(adapter, "/v1.41/containers/json", "GET").warnings == [
        "policy (profile 'trial'): lists are being reviewed (warn mode: not enforced)"]
    assert judge(adapter, "/v1.41/images/json", "GET").warnings == []  # audit mode: recorded only


def test_policy_check_prints_the_cap(tmp_path):
    (tmp_path / "policy.yml").write_text(textwrap.dedent(CAPPED))
    result = CliRunner().invoke(main, ["policy", "check", str(tmp_path / "policy.yml")])
    assert result.exit_code == 0, result.output
    assert ("concurrency: at most 2 request(s) at a time, long-lived streams (events, logs -f, attach, exec, stats, "
            "wait) not counted; over it: 429") in result.output


def test_policy_explain_says_whether_a_request_counts(tmp_path):
    (tmp_path / "policy.yml").write_text(textwrap.dedent(CAPPED))
    for target, counts in (("/v1.41/containers/json", "this request counts"),
                           ("/v1.41/events", "this request is a long-lived stream, not counted")):
        result = CliRunner().invoke(main, ["policy", "explain", "GET", target, "--rules", str(tmp_path / "policy.yml")])
        assert f"limits:  concurrency 2 (long-lived streams not counted): {counts}" in result.output, result.output

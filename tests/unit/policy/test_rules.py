"""Rules files: loading with file:line errors, paths, first match wins, default deny, profiles by client."""

from __future__ import annotations

import textwrap

import pytest

from powerstrip.adapters.policy.engine import decide
from powerstrip.adapters.policy.loader import PolicyError, parse_policy
from powerstrip.adapters.policy.paths import compile_glob, policy_path
from powerstrip.adapters.policy.ratelimit import RateLimiter
from powerstrip.adapters.policy.model import RateLimit
from powerstrip.hooks.model import Peer

RULES = textwrap.dedent("""\
    version: 1
    profiles:
      - name: traefik
        match: {uid: 1001}
        presets: [traefik]
      - name: ops
        match: {address: 10.0.0.0/8}
        rules:
          - deny: "* /containers/*/exec"
            reason: no exec for ops
          - allow: ["GET /containers/**", "POST /containers/*/start", "POST /containers/*/stop"]
      - name: ci
        match: {cert_cn: "ci-*"}
        mode: warn
        rules:
          - allow: "* /**"
    """)

ALICE = Peer(uid=1001, gid=1001, pid=1)


@pytest.fixture
def policy():
    return parse_policy(RULES, "policy.yml")


@pytest.mark.parametrize(("target", "path"), [
    ("/v1.41/containers/json", "/containers/json"), ("/containers/json/", "/containers/json"),
    ("/v1.41//containers/./json?x=/_ping", "/containers/json"), ("/v1.41/x/../_ping", "/_ping"),
    ("/v1.41%2Fcontainers%2Fjson", "/containers/json"), ("/v1.41", "/"), ("/v1.41x/json", "/v1.41x/json"),
])
def test_policy_path(target, path):
    assert policy_path(target) == path


def test_globs():
    glob = compile_glob("GET,HEAD /containers/*/json")
    assert glob.matches("HEAD", "/containers/abc/json") and not glob.matches("POST", "/containers/abc/json")
    assert not glob.matches("GET", "/containers/a/b/json")
    assert compile_glob("* /containers/**").matches("DELETE", "/containers")
    assert compile_glob("* /containers/**").matches("DELETE", "/containers/a/b")
    assert not compile_glob("* /containers/**").matches("GET", "/containersx")
    for bad in ("GET", "get /x", "GET x", "GET /v1.41/x"):
        with pytest.raises(ValueError):
            compile_glob(bad)


def test_profiles_pick_by_client_and_first_rule_wins(policy):
    assert decide(policy, ALICE, "HEAD", "/_ping").allowed
    assert decide(policy, ALICE, "GET", "/v1.41/containers/json").allowed
    refused = decide(policy, ALICE, "POST", "/v1.41/containers/create")
    assert refused.refused and refused.rule is None and "no rule of profile 'traefik'" in refused.reason
    ops = Peer(address="10.1.2.3:5555")
    exec_ = decide(policy, ops, "POST", "/v1.41/containers/abc/exec")
    assert exec_.refused and exec_.reason == "no exec for ops" and exec_.rule.where == "policy.yml:9"
    assert decide(policy, ops, "POST", "/containers/abc/start").allowed
    assert decide(policy, ops, "DELETE", "/containers/abc").refused
    nobody = decide(policy, Peer(uid=1000, gid=1000), "GET", "/_ping")
    assert nobody.refused and nobody.profile is None and "uid 1000" in nobody.reason


def test_cert_and_warn_mode(policy):
    ci = Peer(address="127.0.0.1:1", cert_cn="ci-runner-3", cert_subject="CN=ci-runner-3")
    decision = decide(policy, ci, "POST", "/containers/create", {"HostConfig": {"Privileged": True}})
    assert not decision.allowed and decision.mode == "warn" and not decision.refused
    assert "privileged" in decision.reason


@pytest.mark.parametrize(("text", "line", "message"), [
    ("profiles: {}\n", 1, "'profiles' must be a list"),
    ("profiles:\n  - name: a\n    rules:\n      - allow: GET /x\n        deny: GET /y\n", 4, "exactly one of"),
    ("profiles:\n  - name: a\n    rules:\n      - allow: get /x\n", 4, "uppercase HTTP method"),
    ("profiles:\n  - name: a\n    match: {uid: root}\n", 3, "uid must be a number"),
    ("profiles:\n  - name: a\n    match: {address: 10.0.0.300/8}\n", 3, "not an IP address"),
    ("profiles:\n  - name: a\n    mode: loud\n", 3, "mode must be one of"),
    ("profiles:\n  - name: a\n    presets: [nginx]\n", 3, "unknown preset 'nginx'"),
    ("profiles:\n  - name: a\n    powers: {privileged: yes please}\n", 3, "expected true or false"),
    ("profiles:\n  - name: a\n    powers: {host_namespaces: [net]}\n", 3, "'net' is not one of"),
    ("profiles:\n  - name: a\n    powers: {bind_sources: [srv]}\n", 3, "not an absolute path"),
    ("profiles:\n  - name: a\n  - name: a\n", 3, "duplicate profile name 'a' (first at line 2)"),
    ("profiles:\n  - name: a\n    name: b\n", 3, "duplicate key 'name'"),
    ("profiles:\n  - name: a\n    rate_limit: {rate: 0}\n", 3, "rate must be a positive number"),
    ("profiles:\n  - name: a\n    colour: red\n", 3, "unknown key 'colour'"),
    ("profiles: [\n", 2, "invalid YAML"),
])
def test_errors_name_file_and_line(text, line, message):
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yml")
    assert any(problem.startswith(f"p.yml:{line}: ") and message in problem for problem in caught.value.problems), \
        caught.value.problems


def test_all_problems_together():
    with pytest.raises(PolicyError) as caught:
        parse_policy("profiles:\n  - name: a\n    mode: x\n  - name: b\n    rules: [{allow: GET x}]\n", "p.yml")
    assert [p.split(":")[1] for p in caught.value.problems] == ["3", "5"]


def test_rate_limiter_token_bucket():
    now = [0.0]
    limiter = RateLimiter(lambda: now[0])
    limit = RateLimit(rate=2.0, burst=3)
    assert [limiter.take("p", limit) for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5  # one token back
    assert limiter.take("p", limit) and not limiter.take("p", limit)
    assert limiter.take("other", limit)


def test_unreadable_bodies_are_refused_where_powers_are_judged_but_not_for_build():
    from powerstrip.adapters.policy.engine import UNREADABLE

    policy = parse_policy("profiles:\n  - name: a\n    rules: [{allow: '* /**'}]\n", "p.yml")
    assert decide(policy, ALICE, "POST", "/containers/create", UNREADABLE).refused
    assert decide(policy, ALICE, "POST", "/containers/create", ["not", "an", "object"]).refused
    assert decide(policy, ALICE, "POST", "/build?t=x", UNREADABLE, {"t": ["x"]}).allowed  # the body is a tar
    assert decide(policy, ALICE, "POST", "/build", UNREADABLE, {"networkmode": ["host"]}).refused
    assert decide(policy, ALICE, "PUT", "/containers/x/archive", UNREADABLE).allowed


@pytest.mark.parametrize(("env", "allowed", "refused"), [
    ({}, ["GET /_ping", "HEAD /_ping", "GET /version", "GET /events"], ["GET /containers/json", "POST /_ping"]),
    ({"CONTAINERS": "1"}, ["GET /containers/json", "GET /containers/x/logs"], ["POST /containers/x/start"]),
    ({"CONTAINERS": "1", "POST": "1"}, ["POST /containers/create", "DELETE /containers/x", "POST /containers/x/exec"],
     ["POST /exec/x/start", "GET /images/json"]),
    ({"ALLOW_START": "1"}, ["POST /containers/x/start"], ["POST /containers/x/stop", "GET /containers/json"]),
    ({"ALLOW_RESTARTS": "1"}, ["POST /containers/x/stop", "POST /containers/x/restart", "POST /containers/x/kill"],
     ["POST /containers/x/start"]),
    ({"CONTAINERS": "1", "ALLOW_LOGS": "0"}, ["GET /containers/x/json"], ["GET /containers/x/logs"]),
    ({"CONTAINERS": "1", "POST": "1", "DELETE": "0"}, ["POST /containers/x/stop"], ["DELETE /containers/x"]),
    ({"CONTAINERS": "1", "DELETE": "1"}, ["DELETE /containers/x"], ["POST /containers/x/stop"]),
    ({"PING": "0", "EVENTS": "false"}, ["GET /version"], ["GET /_ping", "GET /events"]),
])
def test_socket_proxy_environment(env, allowed, refused):
    from powerstrip.adapters.policy.socket_proxy import rules_from_env

    policy = parse_policy(rules_from_env(env), "env")
    for request in allowed:
        method, path = request.split()
        assert decide(policy, ALICE, method, "/v1.41" + path).allowed, request
    for request in refused:
        method, path = request.split()
        assert decide(policy, ALICE, method, "/v1.41" + path).refused, request


def test_path_decisions_for_the_fast_path():
    from powerstrip.adapters.policy.engine import path_decision

    policy = parse_policy(textwrap.dedent("""\
        profiles:
          - name: a
            rules:
              - deny: "* /containers/*/exec"
              - deny: "DELETE /**"
                mode: audit
              - allow: "* /**"
        """), "p.yml")
    profile = policy.profiles[0]
    assert path_decision(profile, "GET", "/v1.41/_ping").allowed
    assert path_decision(profile, "POST", "/v1.41/containers/x/exec").refused
    assert path_decision(profile, "POST", "/v1.41/containers/create") is None  # the body decides
    assert path_decision(profile, "DELETE", "/v1.41/containers/x") is None  # audit mode: the hook records it

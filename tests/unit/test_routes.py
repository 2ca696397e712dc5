"""Route matching: on the path the daemon will execute, never on the raw URI."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from powerstrip.config.loader import load_config, passthrough_config
from powerstrip.config.model import AdapterSpec, Config, EndpointSpec
from powerstrip.config.routes import Route, RouteTable
from powerstrip.http.paths import Pattern, normalize_path
from tests.unit.samples import CLUSTERHQ_SAMPLE


def table_from_yaml(tmp_path: Path, text: str) -> RouteTable:
    path = tmp_path / "adapters.yml"
    path.write_text(textwrap.dedent(text))
    return RouteTable(load_config(path))


def names(route: Route | None) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    if route is None:
        return None
    return tuple(spec.name for spec in route.pre), tuple(spec.name for spec in route.post)


@pytest.fixture
def clusterhq(tmp_path: Path) -> RouteTable:
    return table_from_yaml(tmp_path, CLUSTERHQ_SAMPLE)


# --- normalize_path ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("/v1.41/containers/create", "/v1.41/containers/create"),
        ("/v1.41/containers/create?name=x", "/v1.41/containers/create"),
        ("/v1.41/containers/json?x=/containers/create", "/v1.41/containers/json"),
        ("/v1.41/containers%2Fcreate", "/v1.41/containers/create"),
        ("/v1.41/%63ontainers/create", "/v1.41/containers/create"),
        ("/v1.41/containers/create%3Fx=1", "/v1.41/containers/create?x=1"),
        ("/v1.41/containers%252Fcreate", "/v1.41/containers%2Fcreate"),
        ("/v1.41/x/../containers/create", "/v1.41/containers/create"),
        ("/v1.41/x/%2E%2E/containers/create", "/v1.41/containers/create"),
        ("/v1.41/./containers//create", "/v1.41/containers/create"),
        ("//v1.41///containers/create", "/v1.41/containers/create"),
        ("/../../containers/create", "/containers/create"),
        ("/v1.41/containers/", "/v1.41/containers/"),
        ("/v1.41/containers/x/..", "/v1.41/containers"),
        ("/v1.41/containers/.", "/v1.41/containers"),
        ("/..", "/"),
        ("/", "/"),
        ("//", "/"),
        ("", "/"),
        ("http://docker/v1.41/containers/create?x=1", "/v1.41/containers/create"),
        ("http://docker", "/"),
        # Go's url.ParseRequestURI takes a scheme off any target (dockerd creates with "POST x:/containers/create")
        ("x:/containers/create", "/containers/create"),
        ("v1.41:/containers/create?name=a", "/containers/create"),
        ("HTTP://h/v1.41/containers/create", "/v1.41/containers/create"),
        ("x:///v1.41/containers/create", "/v1.41/containers/create"),
        ("a+b.c-d:/v1.41/%63ontainers/create", "/v1.41/containers/create"),
        ("x:containers/create", "/"),                   # opaque: no path to route
        ("1x:/containers/create", "/1x:/containers/create"),  # not a scheme (starts with a digit)
        ("x%3A/containers/create", "/x:/containers/create"),  # not a scheme either: Go refuses it
        ("containers/create", "/containers/create"),
    ],
)
def test_normalize_path(target: str, path: str) -> None:
    assert normalize_path(target) == path


# --- Pattern ------------------------------------------------------------------------------------


def test_pattern_any_version_also_matches_unversioned() -> None:
    pattern = Pattern.compile("POST /*/containers/create")
    assert pattern.matches("POST", "/v1.41/containers/create")
    assert pattern.matches("POST", "/containers/create")
    assert not pattern.matches("GET", "/containers/create")


def test_pattern_without_version_wildcard_matches_only_what_it_says() -> None:
    pattern = Pattern.compile("POST /v1.41/containers/create")
    assert pattern.matches("POST", "/v1.41/containers/create")
    assert not pattern.matches("POST", "/containers/create")
    assert not pattern.matches("POST", "/v1.40/containers/create")


def test_pattern_star_crosses_slashes_and_is_case_sensitive() -> None:
    pattern = Pattern.compile("GET /*/containers/*")
    assert pattern.matches("GET", "/v1.41/containers/abc/logs")
    assert not pattern.matches("GET", "/v1.41/Containers/abc")
    assert not pattern.matches("get", "/v1.41/containers/abc")


def test_pattern_glob_classes() -> None:
    pattern = Pattern.compile("DELETE /v1.4[0-9]/containers/?")
    assert pattern.matches("DELETE", "/v1.41/containers/a")
    assert not pattern.matches("DELETE", "/v1.41/containers/ab")
    assert not pattern.matches("DELETE", "/v1.39/containers/a")


@pytest.mark.parametrize("bad", ["post /x", "POST  /x", "POST x", "POST /x y", "*GET /x", "POST"])
def test_pattern_syntax(bad: str) -> None:
    with pytest.raises(ValueError, match="METHOD /path-glob"):
        Pattern.compile(bad)


def test_any_method_pattern() -> None:
    pattern = Pattern.compile("* /*/containers/*")
    assert pattern.matches("PATCH", "/v1.41/containers/x") and pattern.matches("GET", "/containers/x")
    assert not pattern.matches("GET", "/v1.41/images/x")


def test_any_method_entries_join_every_method_in_config_order() -> None:
    a, b = AdapterSpec("a", "http://a/"), AdapterSpec("b", "http://b/")
    table = RouteTable(Config(path=None, endpoints=(EndpointSpec("* /*", pre=("a",)), EndpointSpec("POST /*/x", pre=("b",))),
                              adapters={"a": a, "b": b}))
    assert names(table.match("POST", "/v1.41/x")) == (("a", "b"), ())
    assert names(table.match("FOO", "/v1.41/x")) == (("a",), ())  # a method no pattern names still gets "*"
    assert names(table.match("GET", "/_ping")) == (("a",), ())


# --- RouteTable ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/v1.41/containers/create",
        "/containers/create",
        "/v1.41/containers/create?name=test1",
        "/v1.41/containers%2Fcreate",
        "/v1.41/x/../containers/create",
        "/v1.41//containers/./create",
        "http://docker/v1.41/containers/create",
        "x:/containers/create",
        "v1.41:/v1.41/containers/create",
    ],
)
def test_create_hooks_match_every_spelling_of_the_path(clusterhq: RouteTable, target: str) -> None:
    assert names(clusterhq.match("POST", target)) == (("flocker", "weave"), ())


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("POST", "/v1.41/containers/json?x=/containers/create"),
        ("GET", "/v1.41/containers/json?x=/containers/create"),
        ("GET", "/v1.41/containers/create"),
        ("post", "/v1.41/containers/create"),
        ("POST", "/v1.41/containers/create/x"),
        ("POST", "/v1.41/containers/createx"),
        ("POST", "/v1.41/containers/create/"),
        ("POST", "/v1.41/containers/x/stop"),
        ("DELETE", "/v1.41/containers/x"),
    ],
)
def test_no_match(clusterhq: RouteTable, method: str, target: str) -> None:
    assert clusterhq.match(method, target) is None


def test_post_hook_route(clusterhq: RouteTable) -> None:
    assert names(clusterhq.match("POST", "/v1.41/containers/abc/start")) == ((), ("weave",))
    assert names(clusterhq.match("POST", "/containers/abc/start")) == ((), ("weave",))


def test_route_carries_the_adapter_specs(clusterhq: RouteTable) -> None:
    route = clusterhq.match("POST", "/v1.41/containers/create")
    assert route == Route(
        pre=(
            AdapterSpec("flocker", "http://flocker/flocker-adapter", line=9),
            AdapterSpec("weave", "http://weave/extension", line=8),
        ),
        post=(),
    )


def test_several_patterns_concatenate_in_config_order_without_duplicates(tmp_path: Path) -> None:
    table = table_from_yaml(
        tmp_path,
        """\
        endpoints:
          "POST /*/containers/*":
            pre: [audit, policy]
            post: [audit]
          "POST /*/containers/create":
            pre: [net, policy, audit]
            post: [net]
          "POST /*":
            pre: [quota, net]
            post: audit
        adapters:
          audit: http://audit/
          policy: http://policy/
          net: builtin:net
          quota: http://quota/
        """,
    )
    assert names(table.match("POST", "/v1.41/containers/create")) == (
        ("audit", "policy", "net", "quota"),
        ("audit", "net"),
    )
    assert names(table.match("POST", "/v1.41/containers/x/start")) == (("audit", "policy", "quota", "net"), ("audit",))
    assert names(table.match("POST", "/v1.41/networks/create")) == (("quota", "net"), ("audit",))


def test_adapter_listed_twice_in_one_list_runs_twice(tmp_path: Path) -> None:
    """``[debug, x, debug]`` is how one sees what x changed: a list runs as written."""
    table = table_from_yaml(
        tmp_path,
        """\
        endpoints:
          "GET /*/info": {pre: [a, b, a], post: [b, b]}
          "GET /*": {pre: [a, c]}
        adapters:
          a: http://a/
          b: http://b/
          c: http://c/
        """,
    )
    assert names(table.match("GET", "/info")) == (("a", "b", "a", "c"), ("b", "b"))


def test_validating_adapters_run_after_every_mutating_one(tmp_path: Path) -> None:
    table = table_from_yaml(
        tmp_path,
        """\
        endpoints:
          "POST /*/containers/create": {pre: [policy, label], post: [check, rewrite]}
          "POST /*": {pre: [quota, net]}
        adapters:
          policy: {url: "http://policy/", kind: validating}
          check: {url: "http://check/", kind: validating}
          quota: {url: "http://quota/", kind: validating}
          label: python:mypkg.hooks:adapter
          rewrite: http://rewrite/
          net: builtin:net
        """,
    )
    assert names(table.match("POST", "/containers/create")) == (
        ("label", "net", "policy", "quota"),
        ("rewrite", "check"),
    )


def test_patterns_of_other_methods_do_not_disturb_config_order(tmp_path: Path) -> None:
    table = table_from_yaml(
        tmp_path,
        """\
        endpoints:
          "GET /*/containers/*": {pre: [b]}
          "POST /*/containers/*": {pre: [x]}
          "GET /*/containers/json": {pre: [a]}
        adapters:
          a: http://a/
          b: http://b/
          x: http://x/
        """,
    )
    assert names(table.match("GET", "/v1.41/containers/json")) == (("b", "a"), ())


def test_passthrough_config_matches_nothing() -> None:
    table = RouteTable(passthrough_config())
    assert table.match("POST", "/v1.41/containers/create") is None
    assert table.match("GET", "/_ping") is None


def test_unconfigured_method_does_no_path_work(clusterhq: RouteTable, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(target: str) -> str:
        raise AssertionError("normalize_path called")

    monkeypatch.setattr("powerstrip.config.routes.normalize_path", fail)
    assert clusterhq.match("GET", "/v1.41/containers/json") is None
    assert RouteTable(passthrough_config()).match("POST", "/v1.41/containers/create") is None


def test_results_are_cached_per_normalized_path() -> None:
    spec = AdapterSpec("a", "http://a/")
    table = RouteTable(Config(path=None, endpoints=(EndpointSpec("GET /*/info", pre=("a",)),), adapters={"a": spec}))
    first = table.match("GET", "/v1.41/info?x=1")
    assert first is not None and first is table.match("GET", "/v1.41//info?y=2")
    assert table.match("GET", "/v1.41/version") is None


def test_cache_is_bounded() -> None:
    spec = AdapterSpec("a", "http://a/")
    config = Config(path=None, endpoints=(EndpointSpec("GET /*/containers/*", pre=("a",)),), adapters={"a": spec})
    table = RouteTable(config, cache_size=8)
    for n in range(100):
        assert table.match("GET", f"/v1.41/containers/{n}/json") == Route((spec,), ())
    assert table._resolve.cache_info().currsize == 8

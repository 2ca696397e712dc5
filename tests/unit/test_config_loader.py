"""adapters.yml loading: every rule, every error with its file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from powerstrip.adapters import BUILTINS
from powerstrip.config.loader import (
    ConfigError,
    find_config_path,
    load_config,
    passthrough_config,
)
from powerstrip.config.model import DEFAULT_ADAPTER_TIMEOUT, AdapterSpec, EndpointSpec
from tests.unit.samples import CLUSTERHQ_SAMPLE


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "adapters.yml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == "\n".join(caught.value.problems)
    prefix = f"{path}:"
    assert all(problem.startswith(prefix) for problem in caught.value.problems)
    return [problem.removeprefix(prefix) for problem in caught.value.problems]


def config_with(tmp_path: Path, adapters: str, endpoints: str = '  "POST /*/containers/create": {pre: [a]}\n'):
    return load_config(write(tmp_path, f"endpoints:\n{endpoints}adapters:\n{adapters}"))


# --- valid files ------------------------------------------------------------------------


def test_clusterhq_sample_loads_unchanged(tmp_path: Path) -> None:
    path = write(tmp_path, CLUSTERHQ_SAMPLE)
    config = load_config(path)
    assert config.path == path
    assert config.endpoints == (
        EndpointSpec("POST /*/containers/create", pre=("flocker", "weave"), line=3),
        EndpointSpec("POST /*/containers/*/start", post=("weave",), line=5),
    )
    assert config.adapters == {
        "weave": AdapterSpec("weave", "http://weave/extension", line=8),
        "flocker": AdapterSpec("flocker", "http://flocker/flocker-adapter", line=9),
    }
    assert config.warnings == ()
    assert config.endpoints


def test_version_is_optional_and_empty_sections_are_fine(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "endpoints: {}\nadapters: {}\n"))
    assert config.endpoints == () and config.adapters == {}


def test_adapter_mapping_form_with_defaults_and_overrides(tmp_path: Path) -> None:
    config = config_with(
        tmp_path,
        "  a: {url: 'https://policy:8443/hook'}\n"
        "  b:\n"
        "    url: builtin:net\n"
        "    timeout: 0.5\n"
        "    failure_policy: ignore\n"
        "  c: {url: 'http://c/', timeout: 30}\n",
        '  "POST /*/containers/create": {pre: [a, b], post: c}\n',
    )
    assert config.adapters["a"] == AdapterSpec("a", "https://policy:8443/hook", DEFAULT_ADAPTER_TIMEOUT, "fail", line=4)
    assert config.adapters["b"] == AdapterSpec("b", "builtin:net", 0.5, "ignore", line=5)
    assert config.adapters["b"].builtin == "net"
    assert config.adapters["c"].timeout == 30.0 and isinstance(config.adapters["c"].timeout, float)


def test_single_adapter_name_is_accepted_for_convenience(tmp_path: Path) -> None:
    config = config_with(tmp_path, "  a: http://a/\n", '  "GET /*/info": {pre: a, post: a}\n')
    assert config.endpoints == (EndpointSpec("GET /*/info", pre=("a",), post=("a",), line=2),)


def test_empty_list_is_fine_when_the_other_phase_has_adapters(tmp_path: Path) -> None:
    config = config_with(tmp_path, "  a: http://a/\n", '  "GET /*/info": {pre: [], post: [a]}\n')
    assert config.endpoints[0].pre == () and config.endpoints[0].post == ("a",)


def test_passthrough_config() -> None:
    config = passthrough_config()
    assert config.path is None and config.endpoints == () and config.adapters == {} and config.warnings == ()


# --- syntax and structure ---------------------------------------------------------------


def test_yaml_syntax_error_has_its_line_and_context(tmp_path: Path) -> None:
    found = problems(tmp_path, 'endpoints: {}\nadapters:\n  weave: "http://weave\n')
    assert found == [
        "4: invalid YAML: while scanning a quoted scalar, found unexpected end of stream (see line 3)"
    ]


def test_bad_indentation_is_a_syntax_error_with_line(tmp_path: Path) -> None:
    found = problems(tmp_path, "endpoints: {}\nadapters:\n  a: http://a/\n b: http://b/\n")
    assert len(found) == 1 and found[0].startswith("4: invalid YAML: while parsing a block mapping")


def test_several_documents_are_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, "endpoints: {}\nadapters: {}\n---\nendpoints: {}\n")
    assert found == [
        "3: invalid YAML: expected a single document in the stream, but found another document (see line 1)"
    ]


def test_empty_file(tmp_path: Path) -> None:
    assert problems(tmp_path, "") == ["1: empty file: expected a mapping with 'endpoints' and 'adapters'"]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert problems(tmp_path, "- a\n- b\n") == ["1: the configuration must be a mapping, not a list"]


@pytest.mark.parametrize("missing", ["endpoints", "adapters"])
def test_required_sections(tmp_path: Path, missing: str) -> None:
    text = "version: 1\nendpoints: {}\nadapters: {}\n".replace(f"{missing}: {{}}\n", "")
    assert problems(tmp_path, text) == [f"1: missing required key '{missing}' (it may be empty: {missing}: {{}})"]


def test_sections_must_be_mappings(tmp_path: Path) -> None:
    assert problems(tmp_path, "endpoints:\nadapters: [a]\n") == [
        "1: 'endpoints' must be a mapping, not empty (null)",
        "2: 'adapters' must be a mapping, not a list",
    ]


@pytest.mark.parametrize("version", ["2", "'1'", "1.0", "true"])
def test_version_must_be_1(tmp_path: Path, version: str) -> None:
    found = problems(tmp_path, f"endpoints: {{}}\nadapters: {{}}\nversion: {version}\n")
    assert len(found) == 1 and found[0].startswith("3: unsupported version")


def test_unknown_top_level_key(tmp_path: Path) -> None:
    assert problems(tmp_path, "endpoints: {}\nadapters: {}\nadapter: {}\n") == [
        "3: unknown key 'adapter' in the configuration (allowed: version, endpoints, adapters)"
    ]


def test_non_string_key(tmp_path: Path) -> None:
    assert problems(tmp_path, "endpoints: {}\nadapters:\n  1: http://a/\n") == [
        "3: keys of 'adapters' must be strings, not '1'"
    ]


def test_merge_keys_and_other_tags_are_refused(tmp_path: Path) -> None:
    text = "endpoints: {}\nadapters:\n  a: {<<: {url: http://a/}}\n  b: !!python/name:os.system http://b/\n"
    assert problems(tmp_path, text) == [
        "3: keys of adapter 'a' must be strings, not '<<' (tag:yaml.org,2002:merge)",
        "3: adapter 'a' has no 'url'",
        "4: adapter 'b': url must be a string, not 'http://b/' (tag:yaml.org,2002:python/name:os.system)",
    ]


def test_aliases_are_followed(tmp_path: Path) -> None:
    text = 'endpoints: {"GET /x": {pre: [a, b]}}\nadapters:\n  a: &u http://a/\n  b: *u\n'
    config = load_config(write(tmp_path, text))
    assert config.adapters["b"] == AdapterSpec("b", "http://a/", line=4)


# --- duplicate keys, at every level -------------------------------------------------------


def test_duplicate_top_level_key(tmp_path: Path) -> None:
    assert problems(tmp_path, "endpoints: {}\nadapters: {}\nendpoints: {}\n") == [
        "3: duplicate key 'endpoints' (first at line 1)"
    ]


def test_duplicate_adapter(tmp_path: Path) -> None:
    found = problems(tmp_path, CLUSTERHQ_SAMPLE + "  weave: http://other/\n")
    assert found == ["10: duplicate key 'weave' (first at line 8)"]


def test_duplicate_endpoint(tmp_path: Path) -> None:
    text = CLUSTERHQ_SAMPLE.replace("adapters:", '  "POST /*/containers/create":\n    pre: [weave]\nadapters:')
    assert problems(tmp_path, text) == ["7: duplicate key 'POST /*/containers/create' (first at line 3)"]


def test_duplicate_phase_in_endpoint(tmp_path: Path) -> None:
    text = CLUSTERHQ_SAMPLE.replace("    post: [weave]\n", "    post: [weave]\n    post: [flocker]\n")
    assert problems(tmp_path, text) == ["7: duplicate key 'post' (first at line 6)"]


def test_duplicate_key_in_adapter_mapping(tmp_path: Path) -> None:
    text = "endpoints: {}\nadapters:\n  a:\n    url: http://a/\n    timeout: 1\n    url: http://b/\n"
    found = problems(tmp_path, text)
    assert found == ["6: duplicate key 'url' (first at line 4)"]


# --- endpoints ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    ["post /*/containers/create", "POST  /x", "POST x", "/*/containers/create", "POST /x ", "POST", "POST\t/x"],
)
def test_bad_endpoint_pattern(tmp_path: Path, pattern: str) -> None:
    found = problems(tmp_path, f'endpoints:\n  "{pattern}": {{pre: [a]}}\nadapters:\n  a: http://a/\n')
    assert len(found) == 1 and found[0].startswith(f"2: endpoint pattern {pattern!r} is not \"METHOD /path-glob\"")


def test_unknown_key_in_endpoint(tmp_path: Path) -> None:
    found = problems(tmp_path, 'endpoints:\n  "GET /x":\n    pre: [a]\n    prehook: [a]\nadapters:\n  a: http://a/\n')
    assert found == ["4: unknown key 'prehook' in endpoint 'GET /x' (allowed: pre, post)"]


@pytest.mark.parametrize("value", ["{}", "{pre: [], post: []}", "{pre: []}"])
def test_endpoint_needs_adapters(tmp_path: Path, value: str) -> None:
    found = problems(tmp_path, f'endpoints:\n  "GET /x": {value}\nadapters:\n  a: http://a/\n')
    assert found == ["2: endpoint 'GET /x' names no adapters: give 'pre' and/or 'post'"]


def test_endpoint_value_must_be_a_mapping(tmp_path: Path) -> None:
    found = problems(tmp_path, 'endpoints:\n  "GET /x": [a]\nadapters:\n  a: http://a/\n')
    assert found == ["2: endpoint 'GET /x' must be a mapping, not a list"]


def test_adapter_names_must_be_strings(tmp_path: Path) -> None:
    text = 'endpoints:\n  "GET /x":\n    pre:\n      - a\n      - {b: c}\n    post:\nadapters:\n  a: http://a/\n'
    found = problems(tmp_path, text)
    assert found == [
        "5: endpoint 'GET /x': 'pre' must list adapter names, not a mapping",
        "6: endpoint 'GET /x': 'post' must list adapter names, not empty (null)",
    ]


def test_unknown_adapter_names_endpoint_and_adapter(tmp_path: Path) -> None:
    text = CLUSTERHQ_SAMPLE.replace("pre: [flocker, weave]", "pre: [flocker,\n          socketplane]")
    found = problems(tmp_path, text)
    assert found == ["5: endpoint 'POST /*/containers/create' uses undefined adapter 'socketplane'"]


def test_references_are_not_checked_when_adapters_section_is_missing(tmp_path: Path) -> None:
    found = problems(tmp_path, 'endpoints:\n  "GET /x": {pre: [a]}\n')
    assert found == ["1: missing required key 'adapters' (it may be empty: adapters: {})"]


# --- adapters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["ftp://a/", "http://", "http:///path", "weave", "unix:///run/a.sock", "http://a:port/", "builtin:nope", "''"],
)
def test_bad_url(tmp_path: Path, url: str) -> None:
    found = problems(tmp_path, f"endpoints:\n  'GET /x': {{pre: a}}\nadapters:\n  z: http://z/\n  a: {url}\n")
    known = ", ".join(sorted(BUILTINS))
    expected = f"unknown built-in adapter 'nope' (known: {known})" if url == "builtin:nope" else "invalid url"
    assert len(found) == 1 and found[0].startswith(f"5: adapter 'a': {expected}"), found


@pytest.mark.parametrize("value", ["", "[http://a/]", "42", "{url: [x]}"])
def test_adapter_value_type(tmp_path: Path, value: str) -> None:
    found = problems(tmp_path, f"endpoints: {{}}\nadapters:\n  a: {value}\n")
    assert len(found) == 1 and found[0].startswith("3: adapter 'a'"), found


def test_adapter_mapping_needs_url(tmp_path: Path) -> None:
    assert problems(tmp_path, "endpoints: {}\nadapters:\n  a:\n    timeout: 2\n") == ["4: adapter 'a' has no 'url'"]


def test_unknown_key_in_adapter(tmp_path: Path) -> None:
    found = problems(tmp_path, "endpoints: {}\nadapters:\n  a:\n    url: http://a/\n    timout: 2\n")
    assert found == ["5: unknown key 'timout' in adapter 'a' (allowed: url, timeout, failure_policy, protocol, kind, rules)"]


def test_protocol_and_kind(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """\
        endpoints:
          "POST /*/containers/create": {pre: [a, b, c]}
        adapters:
          a: {url: "http://a/", protocol: 2, kind: validating}
          b: {url: "python:my_pkg.hooks:adapter", kind: mutating}
          c: http://c/
        """))
    a, b, c = (config.adapters[name] for name in "abc")
    assert (a.protocol, a.kind) == (2, "validating")
    assert (b.python, b.kind, b.protocol) == ("my_pkg.hooks:adapter", "mutating", 1)
    assert (c.protocol, c.kind) == (1, "mutating")


@pytest.mark.parametrize(("entry", "message"), [
    ("{url: 'http://a/', protocol: 3}", "protocol must be 1 or 2, not '3'"),
    ("{url: 'http://a/', protocol: '2'}", "protocol must be 1 or 2, not '2'"),
    ("{url: 'http://a/', protocol: 2.0}", "protocol must be 1 or 2, not '2.0'"),
    ("{url: 'builtin:net', protocol: 2}", "protocol applies to http(s) adapters only"),
    ("{url: 'http://a/', kind: checking}", "kind must be 'mutating' or 'validating', not 'checking'"),
    ("python:hooks", "expected python:MODULE:ATTRIBUTE"),
    ("'python:my-pkg:x'", "expected python:MODULE:ATTRIBUTE"),
])
def test_bad_protocol_kind_or_python_target(tmp_path: Path, entry: str, message: str) -> None:
    found = problems(tmp_path, f"endpoints: {{}}\nadapters:\n  a: {entry}\n")
    assert len(found) == 1 and found[0].startswith("3: adapter 'a'") and message in found[0], found


@pytest.mark.parametrize("timeout", ["0", "-1", "'5'", "true", ".inf", ".nan", "[1]", "null"])
def test_bad_timeout(tmp_path: Path, timeout: str) -> None:
    found = problems(tmp_path, f"endpoints: {{}}\nadapters:\n  a:\n    url: http://a/\n    timeout: {timeout}\n")
    assert len(found) == 1 and found[0].startswith("5: adapter 'a': timeout must be a positive number of seconds")


@pytest.mark.parametrize("policy", ["Fail", "retry", "true", "null"])
def test_bad_failure_policy(tmp_path: Path, policy: str) -> None:
    found = problems(tmp_path, f"endpoints: {{}}\nadapters:\n  a:\n    url: http://a/\n    failure_policy: {policy}\n")
    assert len(found) == 1 and found[0].startswith("5: adapter 'a': failure_policy must be 'fail' or 'ignore'")


def test_all_problems_are_reported_together_in_line_order(tmp_path: Path) -> None:
    text = """\
        version: 2
        endpoints:
          "GET /x": {pre: [nobody]}
          "get /y": {pre: [a]}
        adapters:
          a: ftp://a/
          a: http://a/
        """
    assert problems(tmp_path, text) == [
        "1: unsupported version '2': only version 1 exists",
        "3: endpoint 'GET /x' uses undefined adapter 'nobody'",
        "4: endpoint pattern 'get /y' is not \"METHOD /path-glob\" (uppercase method or *, one space, "
        "a path starting with '/')",
        "6: adapter 'a': invalid url 'ftp://a/': expected http://HOST/..., https://HOST/..., builtin:NAME or python:MODULE:ATTR",
        "7: duplicate key 'a' (first at line 6)",
    ]


def test_error_names_the_file_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "endpoints: {}\nadapters: {}\nadapters: {}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^adapters\.yml:3: duplicate key 'adapters'"):
        load_config(Path("adapters.yml"))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yml")
    (tmp_path / "binary.yml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "binary.yml")


# --- warnings ---------------------------------------------------------------------------------


def test_unused_adapter_warns(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CLUSTERHQ_SAMPLE + "  spare: http://spare/\n"))
    assert config.warnings == (f"{tmp_path / 'adapters.yml'}:10: adapter 'spare' is defined but no endpoint uses it",)


@pytest.mark.parametrize(
    "pattern",
    [
        "GET /*/events",
        "GET /*/containers/*/logs",
        "GET /*/containers/*/stats",
        "POST /*/containers/*/attach",
        "POST /*/exec/*/start",
        "POST /*/build",
        "POST /*/images/create",
        "GET /*/containers/*/archive",
        "GET /*",
    ],
)
def test_post_hooks_on_streaming_endpoint_warn(tmp_path: Path, pattern: str) -> None:
    config = config_with(tmp_path, "  a: http://a/\n", f'  "{pattern}": {{post: [a]}}\n')
    assert len(config.warnings) == 1
    warning = config.warnings[0]
    assert warning.startswith(f"{tmp_path / 'adapters.yml'}:2: endpoint {pattern!r} has post-hooks")
    assert "post-hooks cannot run on a stream response in protocol v1" in warning
    assert "relays such responses without them" in warning


def test_streaming_warning_lists_what_matched(tmp_path: Path) -> None:
    config = config_with(tmp_path, "  a: http://a/\n", '  "GET /*/containers/*": {post: [a]}\n')
    assert "GET /v1.41/containers/x/logs, GET /v1.41/containers/x/stats, GET /v1.41/containers/x/archive" in (
        config.warnings[0]
    )


@pytest.mark.parametrize(
    "endpoint",
    ['"GET /*/events": {pre: [a]}', '"POST /*/containers/*/start": {post: [a]}', '"POST /*/events": {post: [a]}'],
)
def test_no_streaming_warning_without_post_hooks_on_a_stream(tmp_path: Path, endpoint: str) -> None:
    assert config_with(tmp_path, "  a: http://a/\n", f"  {endpoint}\n").warnings == ()


# --- find_config_path -------------------------------------------------------------------------


@pytest.fixture
def in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_explicit_path_wins(in_empty_dir: Path, tmp_path: Path) -> None:
    (in_empty_dir / "adapters.yml").write_text("x")
    explicit = tmp_path / "explicit.yml"
    explicit.write_text("x")
    env = {"POWERSTRIP_CONFIG": str(in_empty_dir / "adapters.yml")}
    assert find_config_path(str(explicit), env) == explicit


def test_explicit_path_must_exist(in_empty_dir: Path) -> None:
    (in_empty_dir / "adapters.yml").write_text("x")
    with pytest.raises(ConfigError, match="^config file not found: nope.yml$"):
        find_config_path("nope.yml", {})


def test_environment_is_next(in_empty_dir: Path, tmp_path: Path) -> None:
    (in_empty_dir / "adapters.yml").write_text("x")
    from_env = tmp_path / "env.yml"
    from_env.write_text("x")
    assert find_config_path(None, {"POWERSTRIP_CONFIG": str(from_env)}) == from_env


def test_environment_path_must_exist(in_empty_dir: Path) -> None:
    (in_empty_dir / "adapters.yml").write_text("x")
    with pytest.raises(ConfigError, match="^config file not found: /no/such.yml$"):
        find_config_path(None, {"POWERSTRIP_CONFIG": "/no/such.yml"})


def test_current_directory_then_etc(in_empty_dir: Path) -> None:
    (in_empty_dir / "adapters.yml").write_text("x")
    assert find_config_path(None, {"POWERSTRIP_CONFIG": ""}) == Path("adapters.yml")


def test_etc_then_none(in_empty_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    etc = Path("/etc/powerstrip/adapters.yml")
    monkeypatch.setattr(Path, "is_file", lambda self: self == etc)
    assert find_config_path(None, {}) == etc
    monkeypatch.setattr(Path, "is_file", lambda self: False)
    assert find_config_path(None, {}) is None


def test_a_directory_is_not_a_config_file(in_empty_dir: Path) -> None:
    (in_empty_dir / "adapters.yml").mkdir()
    with pytest.raises(ConfigError):
        find_config_path("adapters.yml", {})

"""``powerstrip policy check|explain|from-env`` and the adapters.yml side (``rules:``)."""

from __future__ import annotations

import json
import textwrap

import pytest
from click.testing import CliRunner

from powerstrip.cli import main
from powerstrip.config.loader import ConfigError, load_config

RULES = textwrap.dedent("""\
    profiles:
      - name: ci
        match: {uid: 1001}
        presets: [ci-runner]
        powers: {bind_sources: [/srv/ci], root: false, host_ports: ["8000-8999", ephemeral]}
        rate_limit: {rate: 5}
      - name: viewer
        match: {address: 10.0.0.0/8}
        rules:
          - deny: "GET /containers/*/logs"
            reason: logs may hold secrets
          - allow: "GET /containers/**"
    """)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "policy.yml").write_text(RULES)
    (tmp_path / "adapters.yml").write_text(json.dumps({
        "endpoints": {"* /*": {"pre": ["policy"]}},
        "adapters": {"policy": {"url": "builtin:policy", "rules": "policy.yml"}}}))
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_check_prints_each_profile(files):
    result = run("policy", "check", str(files / "policy.yml"))
    assert result.exit_code == 0, result.output
    assert "profile 'ci' (line 2, mode enforce): for uid 1001" in result.output
    assert "allow GET,POST,DELETE /containers/**  (preset ci-runner)" in result.output
    assert "binds under /srv/ci; required: no root, host ports 8000-8999, ephemeral" in result.output
    assert "deny  GET /containers/*/logs  (" in result.output and "# logs may hold secrets" in result.output
    assert "OK, 2 profile(s)" in result.output


def test_check_reports_file_and_line(tmp_path):
    (tmp_path / "bad.yml").write_text("profiles:\n  - name: a\n    rules:\n      - allow: GET containers\n")
    result = run("policy", "check", str(tmp_path / "bad.yml"))
    assert result.exit_code == 1 and f"{tmp_path / 'bad.yml'}:4: profile 'a': 'GET containers'" in result.output


def test_explain_names_profile_rule_and_reason(files):
    result = run("policy", "explain", "GET", "/v1.41/containers/abc/logs", "--as", "addr=10.1.1.1",
                 "--config", str(files / "adapters.yml"))
    assert result.exit_code == 1
    assert "profile: viewer" in result.output and f"[{files / 'policy.yml'}:10]" in result.output
    assert "why:     logs may hold secrets" in result.output
    (files / "body.json").write_text(json.dumps({"Image": "x", "User": "0", "HostConfig": {"Binds": ["/etc:/e"]}}))
    result = run("policy", "explain", "POST", "/containers/create", "--as", "uid=1001", "--body",
                 str(files / "body.json"), "--rules", str(files / "policy.yml"))
    assert result.exit_code == 1 and "profile: ci" in result.output
    assert "  - running as root (User='0') is not allowed" in result.output
    assert "  - bind mount of '/etc' is not allowed (allowed sources: /srv/ci)" in result.output
    result = run("policy", "explain", "GET", "/_ping", "--as", "uid=1000", "--rules", str(files / "policy.yml"))
    assert result.exit_code == 1 and "profile: (none matches)" in result.output


def test_adapters_yml_rules_key(files, tmp_path):
    config = load_config(files / "adapters.yml")
    assert config.adapters["policy"].rules == str(files / "policy.yml")
    (tmp_path / "a.yml").write_text("endpoints: {'* /*': {pre: [p]}}\nadapters:\n  p: {url: 'builtin:policy', rules: nope.yml}\n"
                                    "  q: {url: 'http://x/', rules: policy.yml}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "a.yml")
    assert any(":3: adapter 'p': rules file not found" in p for p in caught.value.problems)
    assert any(":4: adapter 'q': rules applies to built-in adapters only" in p for p in caught.value.problems)


def test_serve_refuses_a_bad_rules_file_with_its_line(files):
    (files / "policy.yml").write_text("profiles:\n  - name: a\n    mode: loud\n")
    result = run("serve", "--config", str(files / "adapters.yml"), "--listen", f"unix://{files}/gw.sock",
                 "--docker", "unix:///nonexistent.sock")
    assert result.exit_code == 1 and f"{files / 'policy.yml'}:3: mode must be one of" in result.output


def test_from_env(monkeypatch):
    for name in ("CONTAINERS", "POST", "ALLOW_START"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMAGES", "1")
    result = run("policy", "from-env")
    assert result.exit_code == 0 and "allow: '* /images/**'" in result.output and "/containers" not in result.output


def test_adapter_run_builtin_policy_needs_rules():
    result = run("adapter", "run", "builtin:policy", "--listen", "tcp://127.0.0.1:1")
    assert result.exit_code == 1 and "builtin:policy needs 'rules: FILE'" in result.output


def test_the_example_files_load():
    from pathlib import Path

    examples = Path(__file__).resolve().parents[3] / "examples" / "policy"
    assert load_config(examples / "adapters.yml").adapters["policy"].rules == str(examples / "policy.yml")
    result = run("policy", "check", str(examples / "policy.yml"))
    assert result.exit_code == 0 and "OK, 4 profile(s)" in result.output, result.output

"""``powerstrip serve`` and ``adapter run``: the command line becomes the settings objects ``app.run`` and
the built-in adapters take, each option in the right one.

``app.run`` (and aiohttp's ``run_app`` for ``adapter run``) are replaced by recorders: what is tested is
the mapping from options to settings, which the integration tests then exercise with a real gateway.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from powerstrip import app, logtext
from powerstrip.adapters import BuiltinContext
from powerstrip.adapters.hostaware.sources import MetricsSourceSettings
from powerstrip.adapters.net.cluster import ClusterSettings
from powerstrip.cli import main
from powerstrip.proxy.addresses import Address, parse_address

MIN_CONFIG = "version: 1\nendpoints: {}\nadapters: {}\n"
ENV = ("POWERSTRIP_DOCKER_HOST", "POWERSTRIP_STATE_DIR", "POWERSTRIP_CONFIG", "POWERSTRIP_CLUSTER",
       "POWERSTRIP_METRICS_SOURCE", "POWERSTRIP_ADVERTISE", "SOCKET_PATH")


@pytest.fixture
def served(monkeypatch, tmp_path) -> dict[str, Any]:
    """What ``app.run`` was called with (and the log level), by keyword."""
    calls: dict[str, Any] = {}
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(logtext, "configure", lambda level: calls.setdefault("log_level", level))

    def run(config, relay, listeners, ops, observability, context) -> None:
        calls.update(config=config, relay=relay, listeners=listeners, ops=ops, observability=observability,
                     context=context)

    monkeypatch.setattr(app, "run", run)
    (tmp_path / "adapters.yml").write_text(MIN_CONFIG)
    return calls


def serve(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["serve", *args], env=env)


def test_the_defaults(served, tmp_path) -> None:
    result = serve()
    assert result.exit_code == 0, result.output
    relay = served["relay"]
    assert relay.upstream == parse_address("unix:///var/run/docker.sock")
    assert (relay.timeouts.idle, relay.timeouts.head, relay.timeouts.body) == (120.0, 10.0, 60.0)
    assert (relay.limits.max_body_size, relay.limits.stream_grace, relay.limits.body_timeout) == (16 << 20, 2.0, 60.0)
    assert [(str(l.address), l.tls) for l in served["listeners"]] == [(f"unix://{tmp_path}/powerstrip.sock", None)]
    ops = served["ops"]
    assert (ops.watch_config, ops.drain_timeout) == (True, 10.0)
    assert ops.load().path == served["config"].path == Path("adapters.yml")  # found in the working directory
    assert served["observability"] == app.Observability(None, None)
    assert served["context"] == BuiltinContext("", "unix:///var/run/docker.sock", Path(".powerstrip"))
    assert served["log_level"] == "info"


def test_each_option_lands_in_its_settings(served, tmp_path) -> None:
    (tmp_path / "other.yml").write_text(MIN_CONFIG)
    result = serve("--listen", "tcp://127.0.0.1:2999", "--listen", "unix:///run/x.sock", "--docker", "tcp://10.1.2.3:2375",
                   "--config", "other.yml", "--state-dir", "st", "--max-body-size", "2MiB", "--idle-timeout", "7",
                   "--head-timeout", "3", "--body-timeout", "9", "--stream-grace", "0.5", "--drain-timeout", "4",
                   "--no-watch-config", "--audit-log", "-", "--metrics-listen", "tcp://127.0.0.1:9323",
                   "--log-level", "debug")
    assert result.exit_code == 0, result.output
    relay = served["relay"]
    assert relay.upstream == Address("tcp", host="10.1.2.3", port=2375)
    assert (relay.timeouts.idle, relay.timeouts.head, relay.timeouts.body) == (7.0, 3.0, 9.0)
    assert (relay.limits.max_body_size, relay.limits.stream_grace, relay.limits.body_timeout) == (2 << 20, 0.5, 9.0)
    assert [str(l.address) for l in served["listeners"]] == ["tcp://127.0.0.1:2999", "unix:///run/x.sock"]
    assert served["config"].path == Path("other.yml")
    assert (served["ops"].watch_config, served["ops"].drain_timeout) == (False, 4.0)
    assert served["observability"] == app.Observability("-", Address("tcp", host="127.0.0.1", port=9323))
    assert served["context"] == BuiltinContext("", "tcp://10.1.2.3:2375", Path("st"))
    assert served["log_level"] == "debug"


def test_environment_variables(served) -> None:
    result = serve(env={"POWERSTRIP_DOCKER_HOST": "tcp://10.9.9.9:2375", "POWERSTRIP_STATE_DIR": "/var/lib/ps"})
    assert result.exit_code == 0, result.output
    assert served["relay"].upstream == Address("tcp", host="10.9.9.9", port=2375)
    assert served["context"] == BuiltinContext("", "tcp://10.9.9.9:2375", Path("/var/lib/ps"))


def test_the_adapters_own_settings_reach_the_context(served) -> None:
    result = serve("--cluster", "etcd://127.0.0.1:2379", "--advertise", "198.18.0.5", "--overlay-mtu", "1400",
                   "--metrics-source", "gmond://127.0.0.1:8649")
    assert result.exit_code == 0, result.output
    context: BuiltinContext = served["context"]
    cluster = context.setting(ClusterSettings)
    assert cluster is not None and (cluster.endpoints, cluster.advertise, cluster.mtu) == (
        (("127.0.0.1", 2379),), "198.18.0.5", 1400)
    assert context.setting(MetricsSourceSettings) == MetricsSourceSettings("gmond://127.0.0.1:8649")


def test_without_their_options_the_adapters_get_no_settings(served) -> None:
    assert serve("--metrics-source", "builtin").exit_code == 0
    assert served["context"].settings == ()


@pytest.mark.parametrize(("args", "message"), [
    (("--metrics-source", "gmond://h:x"), "invalid metrics source 'gmond://h:x': bad port"),
    (("--cluster", "http://h:1"), "invalid cluster 'http://h:1'"),
    (("--max-body-size", "lots"), "'lots' is not a size"),
    (("--socket-proxy-env", "--config", "adapters.yml"), "give it or --config, not both"),
])
def test_bad_options_are_command_line_errors(served, args: tuple[str, ...], message: str) -> None:
    result = serve(*args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "relay" not in served


def test_socket_proxy_env_takes_the_daemon_from_socket_path_unless_docker_is_given(served) -> None:
    result = serve("--socket-proxy-env", env={"SOCKET_PATH": "/run/other.sock"})
    assert result.exit_code == 0, result.output
    assert served["relay"].upstream == Address("unix", path="/run/other.sock")
    assert served["context"].docker_url == "unix:///run/other.sock"
    assert served["config"].path is None and served["ops"].load().adapters.keys() == {"socket-proxy"}

    result = serve("--socket-proxy-env", "--docker", "unix:///run/given.sock", env={"SOCKET_PATH": "/run/other.sock"})
    assert result.exit_code == 0, result.output
    assert served["relay"].upstream == Address("unix", path="/run/given.sock")


def test_adapter_run_gives_a_builtin_its_context(monkeypatch, tmp_path) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(logtext, "configure", lambda level: None)
    made: dict[str, Any] = {}

    def create_builtin(builtin: str, context: BuiltinContext):
        made.update(builtin=builtin, context=context)
        from powerstrip.adapters.debug import DebugAdapter
        return DebugAdapter(context.name)

    def run_app(application, **where: Any) -> None:
        made["app"] = asyncio.run(application)
        made["where"] = where

    import aiohttp.web

    import powerstrip.adapters

    monkeypatch.setattr(powerstrip.adapters, "create_builtin", create_builtin)
    monkeypatch.setattr(aiohttp.web, "run_app", run_app)
    rules = tmp_path / "rules.yml"
    rules.write_text("profiles: []\n")
    result = CliRunner().invoke(main, ["adapter", "run", "builtin:debug", "--listen", "tcp://127.0.0.1:8099",
                                       "--docker", "unix:///run/d.sock", "--state-dir", str(tmp_path),
                                       "--rules", str(rules), "--cluster", "etcd://127.0.0.1:2379",
                                       "--advertise", "198.18.0.9"])
    assert result.exit_code == 0, result.output
    context: BuiltinContext = made["context"]
    assert made["builtin"] == context.name == "debug"
    assert (context.docker_url, context.state_dir, context.rules) == ("unix:///run/d.sock", tmp_path, str(rules))
    assert context.setting(ClusterSettings).advertise == "198.18.0.9"
    assert context.setting(MetricsSourceSettings) is None
    assert made["where"]["host"] == "127.0.0.1" and made["where"]["port"] == 8099

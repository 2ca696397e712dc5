"""The ``powerstrip`` command line.

``serve`` and ``adapter run`` list their options in the order ``--help`` shows them, and get them
grouped (``optiongroups.grouped``) into the settings objects ``app.run`` and the built-in adapters take:
each builder below makes one of them, once, from the options that configure it.
"""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from powerstrip import app, logtext
from powerstrip.adapters import BuiltinContext
from powerstrip.adapters.hostaware.cli import hosts, messages, metrics_source_option, rules
from powerstrip.adapters.net.cli import CLUSTER_OPTIONS, cluster_from_options, cluster_group, info, network
from powerstrip.adapters.net.cluster import ClusterSettings
from powerstrip.adapters.net.inventory_cli import inventory_command
from powerstrip.adapters.policy.cli import policy_group, socket_proxy_config
from powerstrip.adapters.qos.cli import qos_group
from powerstrip.config.loader import ConfigError
from powerstrip.config.model import Config
from powerstrip.hooks.inprocess import AdapterLoadError
from powerstrip.http.machine import Timeouts
from powerstrip.optiongroups import grouped
from powerstrip.proxy.addresses import Address, parse_address
from powerstrip.proxy.connection import ConnectionSettings
from powerstrip.proxy.exchange import Limits
from powerstrip.proxy.server import Listener, ListenerBusy
from powerstrip.sdk.cli import try_command

if TYPE_CHECKING:
    from powerstrip.adapters.hostaware.sources import MetricsSourceSettings

DEFAULT_DOCKER = "unix:///var/run/docker.sock"
_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]i?B?|B)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``16MiB``, ``512k``, ``1048576`` → bytes (binary multiples, like Docker's own flags)."""
    match = _SIZE.match(text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a size (e.g. 16MiB)")
    unit = (match.group(2) or "B")[0].upper()
    return int(match.group(1)) * {"B": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[unit]


def _address(_ctx: click.Context, _param: click.Parameter, value: str | tuple[str, ...]) -> Address | list[Address]:
    try:
        if isinstance(value, tuple):
            return [parse_address(item) for item in value]
        return parse_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group()
@click.version_option(package_name="powerstrip")
def main() -> None:
    """powerstrip: a gateway for the Docker Engine API that runs adapters before and after the daemon."""


main.add_command(network)
main.add_command(info)
main.add_command(cluster_group)
main.add_command(policy_group)
main.add_command(hosts)
main.add_command(rules)
main.add_command(messages)
main.add_command(qos_group)
main.add_command(inventory_command)


def _tls_context(cert: str | None, key: str | None, cacert: str | None) -> ssl.SSLContext | None:
    """Server TLS like dockerd's --tlscert/--tlskey; with --tlscacert, client certificates are required."""
    if not cert and not key:
        return None
    if not cert or not key:
        raise click.UsageError("--tlscert and --tlskey go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if cacert:
        context.load_verify_locations(cacert)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass(frozen=True, slots=True)
class ConfigSource:
    """Where serve's config comes from, at start-up and on every reload: ``--config`` (else the usual
    places), or with ``--socket-proxy-env`` the built-in policy made from docker-socket-proxy's variables."""

    path: str | None
    socket_proxy_env: bool

    def first(self) -> Config:
        """The config at start-up, with what was found logged; raises ConfigError."""
        return socket_proxy_config() if self.socket_proxy_env else app.load(self.path)

    def again(self) -> Config:
        """The config as found now (a file that appeared since start-up is found); raises ConfigError."""
        return socket_proxy_config() if self.socket_proxy_env else app.find_and_load(self.path)


def _config_source(config_path: str | None, socket_proxy_env: bool) -> ConfigSource:
    if socket_proxy_env and config_path:
        raise click.UsageError("--socket-proxy-env replaces the config: give it or --config, not both")
    return ConfigSource(config_path, socket_proxy_env)


def _upstream(docker: Address, socket_proxy_env: bool) -> Address:
    """``--docker``; with ``--socket-proxy-env`` and no --docker, SOCKET_PATH names the daemon, as it does
    for docker-socket-proxy."""
    given = click.get_current_context().get_parameter_source("docker") is not click.core.ParameterSource.DEFAULT
    if socket_proxy_env and os.environ.get("SOCKET_PATH") and not given:
        return parse_address("unix://" + os.environ["SOCKET_PATH"])
    return docker


def _relay(upstream: Address, max_body_size: str, idle_timeout: float, head_timeout: float, body_timeout: float,
           stream_grace: float) -> ConnectionSettings:
    return ConnectionSettings(
        upstream=upstream, connect_timeout=5.0,
        timeouts=Timeouts(idle=idle_timeout, head=head_timeout, body=body_timeout, linger=2.0),
        limits=Limits(max_body_size=parse_size(max_body_size), body_timeout=body_timeout,
                      stream_grace=stream_grace, hijack_linger=2.0),
    )


def _listeners(listen: list[Address], tlscert: str | None, tlskey: str | None, tlscacert: str | None) -> list[Listener]:
    """One listener per ``--listen``; the TLS options apply to the tcp ones."""
    tls = _tls_context(tlscert, tlskey, tlscacert)
    return [Listener(address, tls if address.scheme == "tcp" else None)
            for address in listen or [parse_address("unix://./powerstrip.sock")]]


def _operations(config_source: ConfigSource, watch_config: bool, drain_timeout: float) -> app.Operations:
    return app.Operations(load=config_source.again, watch_config=watch_config, drain_timeout=drain_timeout)


def _adapter_settings(cluster: ClusterSettings | None,
                      metrics_source: MetricsSourceSettings | None) -> tuple[object, ...]:
    """The built-in adapters' own settings that their options made (each adapter reads its own)."""
    return tuple(item for item in (cluster, metrics_source) if item is not None)


def _serve_context(upstream: Address, state_dir: str, cluster: ClusterSettings | None,
                   metrics_source: MetricsSourceSettings | None) -> BuiltinContext:
    """What the config's built-in adapters get (the registry sets each one's name and rules)."""
    return BuiltinContext("", str(upstream), Path(state_dir), settings=_adapter_settings(cluster, metrics_source))


@main.command()
@grouped(
    click.option("--listen", "listen", multiple=True, callback=_address, metavar="ADDRESS",
                 help="unix:///path or tcp://host:port; repeat for several. Default unix://./powerstrip.sock"),
    click.option("--docker", "docker", envvar="POWERSTRIP_DOCKER_HOST", default=DEFAULT_DOCKER, show_default=True,
                 callback=_address, help="The Docker daemon to forward to (env POWERSTRIP_DOCKER_HOST)."),
    click.option("--config", "config_path", type=click.Path(dir_okay=False),
                 help="adapters.yml (else $POWERSTRIP_CONFIG, ./adapters.yml, /etc/powerstrip/adapters.yml)."),
    click.option("--state-dir", envvar="POWERSTRIP_STATE_DIR", default=".powerstrip", show_default=True,
                 type=click.Path(file_okay=False), help="Where built-in adapters keep their state."),
    click.option("--max-body-size", default="16MiB", show_default=True,
                 help="Largest request/response body the hooks are given; larger ones are refused (413/502)."),
    click.option("--idle-timeout", default=120.0, show_default=True,
                 help="Seconds an idle keep-alive connection is kept."),
    click.option("--head-timeout", default=10.0, show_default=True,
                 help="Seconds a request head may take to arrive once it began (else 408)."),
    click.option("--body-timeout", default=60.0, show_default=True,
                 help="Seconds a hooked request body may take to arrive, and a relayed one may pause (else 408)."),
    click.option("--stream-grace", default=2.0, show_default=True,
                 help="Seconds a chunked response may stay open before it is treated as a stream "
                      "(post-hooks skipped)."),
    click.option("--tlscert", type=click.Path(exists=True, dir_okay=False), help="Serve TLS with this certificate."),
    click.option("--tlskey", type=click.Path(exists=True, dir_okay=False), help="Key of --tlscert."),
    click.option("--tlscacert", type=click.Path(exists=True, dir_okay=False),
                 help="Require client certificates of this CA."),
    click.option("--drain-timeout", default=10.0, show_default=True,
                 help="On SIGTERM, seconds requests in progress get to finish before streams and the rest are cut."),
    click.option("--watch-config/--no-watch-config", default=True, show_default=True,
                 help="Reload the config when its file changes (checked every second). SIGHUP always reloads."),
    click.option("--audit-log", metavar="PATH|-", help="Append one JSON line per request to PATH (- for stderr)."),
    click.option("--metrics-listen", callback=lambda ctx, param, value: value and _address(ctx, param, value),
                 metavar="ADDRESS", help="Serve /metrics (Prometheus) and /health here, e.g. tcp://127.0.0.1:9323."),
    click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
                 show_default=True),
    click.option("--socket-proxy-env", is_flag=True,
                 help="Enforce docker-socket-proxy's environment variables (CONTAINERS, POST, ALLOW_START, ...) "
                      "with the built-in policy instead of an adapters.yml; SOCKET_PATH names the daemon. "
                      "See docs/policy.md."),
    *CLUSTER_OPTIONS,
    metrics_source_option,
    config_source=_config_source,  # --config, --socket-proxy-env
    upstream=_upstream,  # --docker (or SOCKET_PATH)
    relay=_relay,  # the daemon, --max-body-size, the timeouts, --stream-grace
    listeners=_listeners,  # --listen, --tls*
    operations=_operations,  # reload (--watch-config), stop (--drain-timeout)
    observability=app.Observability,  # --audit-log, --metrics-listen
    cluster=cluster_from_options,  # the net adapter's --cluster and the rest
    adapters=_serve_context,  # the daemon, --state-dir, the adapters' own settings (cluster, metrics source)
)
def serve(log_level: str, config_source: ConfigSource, relay: ConnectionSettings, listeners: list[Listener],
          operations: app.Operations, observability: app.Observability, adapters: BuiltinContext) -> None:
    """Run the gateway: point DOCKER_HOST at it and use Docker as usual."""
    logtext.configure(log_level)
    try:
        config = config_source.first()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        app.run(config, relay, listeners, operations, observability, adapters)
    except (ListenerBusy, OSError, AdapterLoadError, ConfigError) as exc:  # ConfigError: a built-in's rules file
        raise click.ClickException(str(exc)) from None


@main.group()
def adapter() -> None:
    """Run adapters as standalone services, or try one on a request."""


adapter.add_command(try_command)


def _adapter_context(target: str, docker: Address, state_dir: str, rules: str | None, cluster: ClusterSettings | None,
                     metrics_source: MetricsSourceSettings | None) -> BuiltinContext:
    """What a built-in TARGET gets (unused for an SDK adapter)."""
    return BuiltinContext(target.removeprefix("builtin:"), str(docker), Path(state_dir), rules and os.path.abspath(rules),
                          settings=_adapter_settings(cluster, metrics_source))


@adapter.command("run")
@click.argument("target", metavar="MODULE:ATTR|builtin:NAME")
@grouped(
    click.option("--listen", default="tcp://127.0.0.1:8080", show_default=True, callback=_address,
                 help="unix:///path or tcp://host:port"),
    click.option("--docker", envvar="POWERSTRIP_DOCKER_HOST", default=DEFAULT_DOCKER, show_default=True,
                 callback=_address, help="The Docker daemon a built-in adapter talks to."),
    click.option("--state-dir", envvar="POWERSTRIP_STATE_DIR", default=".powerstrip", show_default=True,
                 type=click.Path(file_okay=False), help="Where a built-in adapter keeps its state."),
    click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info"),
    click.option("--rules", type=click.Path(exists=True, dir_okay=False),
                 help="A built-in adapter's rules file (builtin:policy), as `rules:` in adapters.yml."),
    *CLUSTER_OPTIONS,
    metrics_source_option,
    cluster=cluster_from_options,
    context=_adapter_context,  # TARGET, --docker, --state-dir, --rules, the adapters' own settings
)
def adapter_run(target: str, listen: Address, log_level: str, context: BuiltinContext) -> None:
    """Serve an adapter over HTTP: protocol v1 and v2 documents on any path, GET /v1/ping answers pong.

    TARGET is an SDK adapter (MODULE:ATTR, imported from the current directory or PYTHONPATH) or a
    built-in one (builtin:NAME).
    """
    from aiohttp import web

    from powerstrip.adapters import UnknownBuiltin, create_builtin
    from powerstrip.hooks.inprocess import import_adapter
    from powerstrip.hooks.service import build_app

    logtext.configure(log_level)
    try:
        imported = None if target.startswith("builtin:") else import_adapter(target, [Path.cwd()])
    except AdapterLoadError as exc:
        raise click.ClickException(str(exc)) from None

    async def make_app() -> web.Application:
        if imported is not None:
            return build_app(imported)
        try:  # built-ins may start tasks, so they are made on the running loop
            return build_app(create_builtin(context.name, context))
        except (UnknownBuiltin, ConfigError) as exc:
            raise click.ClickException(str(exc)) from None

    def announce(_: str) -> None:
        print(f"serving {target} on {listen}", flush=True)

    if listen.scheme == "unix":
        web.run_app(make_app(), path=listen.path, print=announce)
    else:
        web.run_app(make_app(), host=listen.host, port=listen.port, print=announce)

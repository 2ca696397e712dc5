"""The gateway put together: generations, the listeners, reload, observability; run until signalled.

``run`` takes a few settings objects, each of one concern: the relay (``ConnectionSettings``: the daemon,
timeouts, limits), the listeners (addresses with their TLS), ``Operations`` (reload and stop),
``Observability`` (audit log, metrics listener) and the built-in adapters' ``BuiltinContext``. ``cli``
builds them once from the command line; this module wires them (and is what a program embedding the
gateway would call).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from powerstrip import gatewayinfo
from powerstrip.adapters import BuiltinContext
from powerstrip.config.loader import find_config_path, load_config, passthrough_config
from powerstrip.config.model import Config
from powerstrip.observability import combine
from powerstrip.observability.audit import AuditLog
from powerstrip.observability.extensions import EXTENSIONS
from powerstrip.observability.metrics import Metrics
from powerstrip.proxy.addresses import Address
from powerstrip.proxy.connection import ConnectionSettings
from powerstrip.proxy.exchange import OpenStreams
from powerstrip.proxy.server import Gateway, Listener, run_until_signalled
from powerstrip.runtime.generations import Generations
from powerstrip.runtime.reload import Reloader, first_generation

log = logging.getLogger("powerstrip")


def find_and_load(config_path: str | None) -> Config:
    """The config as found now (also on reload: a file that appeared since start-up is found)."""
    path = find_config_path(config_path, os.environ)
    return passthrough_config() if path is None else load_config(path)


def load(config_path: str | None) -> Config:
    config = find_and_load(config_path)
    if config.path is None:
        log.info("no adapters.yml found (--config, $POWERSTRIP_CONFIG, ./adapters.yml, "
                 "/etc/powerstrip/adapters.yml): running as a pure pass-through")
        return config
    for warning in config.warnings:
        log.warning("%s", warning)
    log.info("config %s: %d endpoint pattern(s), %d adapter(s)", config.path, len(config.endpoints),
             len(config.adapters))
    return config


@dataclass(frozen=True, slots=True)
class Operations:
    """Running the gateway rather than relaying: where its config comes from again, and how it stops."""

    load: Callable[[], Config]  # the config as found now, on SIGHUP or a change of its file; raises ConfigError
    watch_config: bool  # poll the config file for changes (SIGHUP reloads either way)
    drain_timeout: float  # seconds requests in progress get on SIGTERM


@dataclass(frozen=True, slots=True)
class Observability:
    """Where the gateway reports besides its log."""

    audit_log: str | None = None  # PATH to append one JSON line per request to, "-" for stderr
    metrics_listen: Address | None = None  # /metrics and /health


async def serve(config: Config, relay: ConnectionSettings, listeners: list[Listener], ops: Operations,
                observability: Observability, context: BuiltinContext) -> None:
    """Serve until signalled; ``context`` is what built-in adapters get (their name set per adapter).

    Raises ``OSError`` when the audit log cannot be opened or a listener cannot be made."""
    audit = _open_audit(observability.audit_log)  # before the adapters: they may audit from the start
    try:
        await _serve(config, relay, listeners, ops, observability.metrics_listen, audit, context)
    finally:
        if audit is not None:
            EXTENSIONS.remove_audit_sink(audit.write)
            audit.close()


def _open_audit(path: str | None) -> AuditLog | None:
    if not path:
        return None
    try:
        audit = AuditLog(path)
    except OSError as exc:
        raise OSError(f"cannot open the audit log: {exc}") from None
    EXTENSIONS.add_audit_sink(audit.write)  # what adapters audit that is not a request (hostaware's actions)
    return audit


async def _serve(config: Config, relay: ConnectionSettings, listeners: list[Listener], ops: Operations,
                 metrics_listen: Address | None, audit: AuditLog | None, context: BuiltinContext) -> None:
    generations = Generations(first_generation(config, context))
    ops_listener = reload_task = None
    try:
        # the gauge reads ``gateway`` when scraped, by then it is bound
        metrics = (Metrics(lambda: gateway.open_connections, lambda: OpenStreams.count + gateway.open_streams)
                   if metrics_listen else None)
        gateway = Gateway(generations, relay, ops.drain_timeout, combine(audit, metrics))
        reloader = Reloader(generations, ops.load, 1.0 if ops.watch_config else None,
                            metrics.reloaded if metrics else None)
        reload_task = asyncio.get_running_loop().create_task(reloader.run())
        if metrics is not None and metrics_listen is not None:
            from powerstrip.observability.listener import build_app, start_listener

            ops_listener = await start_listener(build_app(metrics, lambda: _health(gateway, generations)),
                                                  metrics_listen)
            log.info("metrics and health on %s", metrics_listen)
        log.info("forwarding to the Docker daemon at %s", relay.upstream)

        def announce() -> None:
            scheme = "tcp" if listeners[0].address.scheme == "tcp" else "unix"
            print(f"export DOCKER_HOST={listeners[0].address}", flush=True)
            if scheme == "tcp" and listeners[0].tls:
                print("export DOCKER_TLS_VERIFY=1", flush=True)

        def on_hangup() -> None:
            log.info("SIGHUP: reloading the config")
            if audit is not None:
                audit.reopen()
            reloader.request()

        note = gatewayinfo.record(context.state_dir, str(relay.upstream))
        log.debug("the daemon address for the other commands: %s", note)
        await run_until_signalled(gateway, listeners, announce, on_hangup)
    finally:
        gatewayinfo.forget(context.state_dir)
        if reload_task is not None:
            reload_task.cancel()
            await asyncio.gather(reload_task, return_exceptions=True)
        if ops_listener is not None:
            await ops_listener.close()
        await generations.close()


def _health(gateway: Gateway, generations: Generations) -> tuple[int, dict[str, object]]:
    """200 while serving; 503 before the listeners are up and once a stop began (a load balancer then
    sends clients elsewhere)."""
    status = "draining" if gateway.draining else "ok" if gateway.serving else "starting"
    return 200 if status == "ok" else 503, {"status": status, "config_generation": generations.current.number}


def run(config: Config, relay: ConnectionSettings, listeners: list[Listener], ops: Operations,
        observability: Observability, context: BuiltinContext) -> None:
    """``serve`` on uvloop (asyncio's own loop where uvloop is missing) until SIGTERM/SIGINT."""
    try:
        import uvloop
    except ImportError:  # uvloop is optional on platforms it does not support
        asyncio.run(serve(config, relay, listeners, ops, observability, context))
    else:
        uvloop.run(serve(config, relay, listeners, ops, observability, context))

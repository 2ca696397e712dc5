"""One client connection: read a request head, pick relay or hooks, repeat while keep-alive holds."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from powerstrip.config.routes import RouteTable
from powerstrip.hooks.model import Adapter, Peer
from powerstrip.http.head import MAX_HEAD_SIZE, MalformedMessage, parse_request_head
from powerstrip.proxy import exchange
from powerstrip.proxy.addresses import Address
from powerstrip.proxy.peer import peer_of
from powerstrip.proxy.streams import PeerClosed, read_head
from powerstrip.proxy.upstream import DaemonUnavailable, UpstreamLink

log = logging.getLogger("powerstrip.access")


@dataclass(frozen=True, slots=True)
class Runtime:
    """What a loaded config gives the proxy: the routes and the live adapters they name."""

    routes: RouteTable
    adapters: dict[str, Adapter]


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    upstream: Address
    idle_timeout: float
    connect_timeout: float
    limits: exchange.Limits


async def handle_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, runtime: Runtime, settings: ConnectionSettings
) -> None:
    """Serve one client connection until it closes, idles out, or an exchange ends it."""
    client = (reader, writer)
    peer = peer_of(writer)
    link = UpstreamLink(settings.upstream, MAX_HEAD_SIZE, settings.connect_timeout)
    try:
        while True:
            try:
                raw = await asyncio.wait_for(read_head(reader), settings.idle_timeout)
            except TimeoutError:
                return  # idle keep-alive connection reaped
            if raw is None:
                return
            started = time.perf_counter()
            outcome = await _one_exchange(client, peer, link, raw, runtime, settings)
            _log_exchange(raw, outcome, time.perf_counter() - started)
            if not outcome.keep_alive:
                return
    except MalformedMessage as exc:
        await exchange.send_error(client, exc.status, f"powerstrip: {exc}", False, exchange.Outcome())
    except (PeerClosed, ConnectionError, TimeoutError) as exc:
        log.debug("connection ended: %s", exc or type(exc).__name__, exc_info=True)
    finally:
        link.discard()
        writer.close()


async def _one_exchange(
    client: exchange.Stream, peer: Peer, link: UpstreamLink, raw: bytes, runtime: Runtime, settings: ConnectionSettings
) -> exchange.Outcome:
    head = parse_request_head(raw)
    route = runtime.routes.match(head.method, head.target)
    if route is None and exchange.is_dry_run(head):
        route = exchange.NO_HOOKS  # a dry run never reaches the daemon, hooked or not
    try:
        if route is None:
            return await exchange.relay(client, link, head, settings.limits)
        return await exchange.hooked(client, peer, link, head, route, runtime.adapters, settings.limits)
    except DaemonUnavailable as exc:
        # The request body (if any) was not read, so the connection cannot carry another request.
        return await exchange.send_error(client, 502, str(exc), False, exchange.Outcome())


def _log_exchange(raw: bytes, outcome: exchange.Outcome, seconds: float) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    request_line = raw[: raw.find(b"\r\n")].decode("latin-1")
    hooks = f" uid={outcome.uid} hooks=" + ",".join(map(str, outcome.hooks)) if outcome.hooks else ""
    note = f" ({outcome.note})" if outcome.note and outcome.status >= 400 else ""
    log.info("%s -> %s %.1fms%s%s", request_line.rsplit(" ", 1)[0], outcome.status or "-", seconds * 1000, hooks, note)

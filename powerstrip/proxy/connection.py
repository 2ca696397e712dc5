"""One client connection: read a request head, pick relay or hooks, repeat while keep-alive holds."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from powerstrip.config.routes import Route, RouteTable
from powerstrip.hooks.model import Adapter, PathVerdict, Peer
from powerstrip.http.head import MAX_HEAD_SIZE, Framing, MalformedMessage, RequestHead, parse_request_head
from powerstrip.proxy import exchange
from powerstrip.proxy.access_log import ACCESS_LOG
from powerstrip.proxy.addresses import Address
from powerstrip.proxy.peer import peer_of
from powerstrip.proxy.streams import PeerClosed, read_head
from powerstrip.proxy.upstream import DaemonUnavailable, UpstreamLink

if TYPE_CHECKING:
    from powerstrip.proxy.generations import Generations

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


@dataclass(slots=True, eq=False)
class ClientConnection:
    """The gateway's view of one client connection: who it is, busy with an exchange or idle.

    ``closing`` (set on SIGTERM) ends the connection after the exchange in progress.
    """

    writer: asyncio.StreamWriter
    peer: Peer = field(init=False)
    busy: bool = False
    closing: bool = False

    def __post_init__(self) -> None:
        self.peer = peer_of(self.writer)


@dataclass(frozen=True, slots=True)
class ExchangeRecord:
    """One finished exchange, for the audit log and the metrics."""

    method: str
    target: str
    hooked: bool
    generation: int
    outcome: exchange.Outcome
    seconds: float


class Observer(Protocol):
    def exchanged(self, client: ClientConnection, record: ExchangeRecord) -> None: ...


async def handle_connection(
    client_conn: ClientConnection, reader: asyncio.StreamReader, generations: Generations,
    settings: ConnectionSettings, observer: Observer | None = None,
) -> None:
    """Serve one client connection until it closes, idles out, an exchange ends it, or the gateway stops."""
    writer = client_conn.writer
    client = (reader, writer)
    link = UpstreamLink(settings.upstream, MAX_HEAD_SIZE, settings.connect_timeout)
    try:
        while not client_conn.closing:
            client_conn.busy = False
            try:
                async with asyncio.timeout(settings.idle_timeout):  # a timer, not a task as wait_for makes
                    raw = await read_head(reader)
            except TimeoutError:
                return  # idle keep-alive connection reaped
            if raw is None:
                return
            client_conn.busy = True
            started = time.perf_counter()
            try:
                head = parse_request_head(raw)
            except MalformedMessage as exc:
                await _refuse_malformed(client, client_conn, raw, exc, generations, started, observer)
                return
            generation = generations.lease()
            route = generation.runtime.routes.match(head.method, head.target)
            if route is None and exchange.is_dry_run(head):
                route = exchange.NO_HOOKS  # a dry run never reaches the daemon, hooked or not
            # replaced when the exchange finishes; kept (status 0) when the client leaves or the stop cuts it
            outcome = exchange.Outcome(note="the exchange did not finish")
            try:
                outcome = await _one_exchange(client, client_conn.peer, link, head, route,
                                              generation.runtime.adapters, settings)
            finally:
                generations.release(generation)
                seconds = time.perf_counter() - started
                _log_exchange(raw, outcome, seconds)
                if observer is not None:
                    observer.exchanged(client_conn, ExchangeRecord(
                        head.method, head.target, route is not None, generation.number, outcome, seconds))
            if not outcome.keep_alive:
                return
    except MalformedMessage as exc:  # a head too large to read, or a relayed body the client framed wrongly
        await exchange.send_error(client, exc.status, f"powerstrip: {exc}", False, exchange.Outcome())
    except (PeerClosed, ConnectionError, TimeoutError) as exc:
        log.debug("connection ended: %s", exc or type(exc).__name__, exc_info=True)
    finally:
        link.discard()
        writer.close()


async def _one_exchange(
    client: exchange.Stream, peer: Peer, link: UpstreamLink, head: RequestHead, route: Route | None,
    adapters: dict[str, Adapter], settings: ConnectionSettings,
) -> exchange.Outcome:
    try:
        if route is not None and len(route.pre) == 1 and not route.post:
            route, refusal = _judged_by_path(route, adapters[route.pre[0].name], head, peer)
            if refusal is not None:
                return await exchange.send_error(client, refusal.status, refusal.message, head.keep_alive,
                                                 exchange.Outcome())
        if route is None:
            return await exchange.relay(client, link, head, settings.limits)
        return await exchange.hooked(client, peer, link, head, route, adapters, settings.limits)
    except DaemonUnavailable as exc:
        # The request body (if any) was not read, so the connection cannot carry another request.
        return await exchange.send_error(client, 502, str(exc), False, exchange.Outcome())


def _judged_by_path(route: Route, adapter: Adapter, head: RequestHead, peer: Peer) -> tuple[Route | None, PathVerdict | None]:
    """A route whose only hook can decide by path (``PathJudge``): relayed unhooked, refused, or hooked as usual."""
    judge = getattr(adapter, "judge_path", None)
    verdict = judge(head.method, head.target, peer) if judge is not None else None
    if verdict is None or (verdict.status == 0 and exchange.is_dry_run(head)):
        return route, None
    if verdict.status == 0:
        return None, None
    if head.framing is not Framing.NONE:
        # a refusal must leave the connection usable (a "Connection: close" 403 to an Upgrade request reads
        # as a hijack to the docker CLI), so a request with a body goes the hooked way, which reads it first
        return route, None
    return route, PathVerdict(verdict.status, f"adapter {route.pre[0].name}: {verdict.message}")


async def _refuse_malformed(
    client: exchange.Stream, client_conn: ClientConnection, raw: bytes, exc: MalformedMessage,
    generations: Generations, started: float, observer: Observer | None,
) -> None:
    """Answer a head that does not parse, and log and audit it like any other request (smuggling attempts too)."""
    outcome = await exchange.send_error(client, exc.status, f"powerstrip: {exc}", False, exchange.Outcome())
    seconds = time.perf_counter() - started
    _log_exchange(raw, outcome, seconds)
    if observer is not None:
        method, _, rest = _request_line(raw).partition(" ")
        observer.exchanged(client_conn, ExchangeRecord(method, rest.rpartition(" ")[0] or rest, False,
                                                       generations.current.number, outcome, seconds))


def _request_line(raw: bytes) -> str:
    """The head's first line as text (latin-1, so any bytes read), up to CRLF or a bare LF."""
    end = raw.find(b"\n")
    return raw[: end if end >= 0 else len(raw)].rstrip(b"\r").decode("latin-1")


def _log_exchange(raw: bytes, outcome: exchange.Outcome, seconds: float) -> None:
    if not ACCESS_LOG.enabled:
        return
    request_line = _request_line(raw)
    hooks = f" uid={outcome.uid} hooks=" + ",".join(map(str, outcome.hooks)) if outcome.hooks else ""
    note = f" ({outcome.note})" if outcome.note and outcome.status >= 400 else ""
    ACCESS_LOG.write(f"{request_line.rsplit(' ', 1)[0]} -> {outcome.status or '-'} {seconds * 1000:.1f}ms{hooks}{note}")

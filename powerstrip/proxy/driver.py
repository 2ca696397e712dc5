"""The only code of the relay that touches sockets: asyncio Protocols on both sides of a connection.

``ClientSide`` is the protocol of one accepted client connection; it owns a ``ConnectionMachine``
(``powerstrip.http.machine``), turns socket callbacks into the machine's events and carries out
its commands. ``DaemonSide`` is the protocol of that connection's daemon connection (opened on
first use, kept alive between exchanges). Flow control is the transports' own: a side whose peer
cannot take more (``pause_writing``) stops being read (``pause_reading``) until it can.

A hooked exchange leaves the Protocol world: the driver hands the client and daemon connections
to the hook path as streams (``proxy.bridge``), runs ``exchange.hooked`` as a task, and takes the
connections back when it returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from powerstrip.http.head import MAX_HEAD_SIZE, MalformedMessage, RequestHead
from powerstrip.http.machine import ConnectionMachine, Judged, Phase, Refusal, Timeouts, error_response
from powerstrip.http.outcome import Outcome, Side
from powerstrip.proxy import exchange
from powerstrip.proxy.addresses import Address
from powerstrip.proxy.bridge import BridgeReader, Stream, TransportWriter, Transportish
from powerstrip.proxy.connection import (
    ClientConnection,
    ConnectionSettings,
    ExchangeRecord,
    Observer,
    log_exchange,
    request_line_parts,
)
from powerstrip.proxy.generation import Generation, Generations
from powerstrip.proxy.peer import peer_of
from powerstrip.proxy.segments import Segments
from powerstrip.proxy.upstream import DaemonUnavailable


log = logging.getLogger("powerstrip.proxy")

# A stream pauses its source when this much waits to be sent (one read's worth, uvloop reads 256 KiB at a
# time): with the 64 KiB default, a fast daemon and a slower client toggled reading on every other read.
WRITE_HIGH_WATER = 256 * 1024
_SPLICED = Phase.SPLICED  # a global: an enum member's lookup costs three times one, on every write


@dataclass(slots=True, eq=False)
class Hub:
    """What every connection of one gateway shares."""

    generations: Generations
    settings: ConnectionSettings
    timeouts: Timeouts
    observer: Observer | None
    connections: set[ClientSide]
    draining: bool = False


class DaemonSide(asyncio.Protocol):
    """The daemon connection of one client connection: events go to the machine, or to a bridge while
    a hooked exchange reads it as a stream."""

    __slots__ = ("_owner", "transport", "live", "bridge")

    def __init__(self, owner: ClientSide) -> None:
        self._owner: ClientSide | None = owner
        self.transport: asyncio.Transport | None = None
        self.live = False
        self.bridge: Stream | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.live = True
        transport.set_write_buffer_limits(WRITE_HIGH_WATER)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.bridge is not None:
            self.bridge.reader.feed_data(data)
        elif self._owner is not None:
            self._owner.machine.daemon_data(data)

    def eof_received(self) -> bool:
        self.live = False
        if self.bridge is not None:
            self.bridge.reader.feed_eof()
        elif self._owner is not None:
            self._owner.machine.daemon_eof()
        return True  # the other direction may still carry stdin (a hijacked stream)

    def connection_lost(self, exc: Exception | None) -> None:
        was_live, self.live = self.live, False
        if self.bridge is not None:
            self.bridge.reader.feed_eof()
            self.bridge.writer.lost()
        elif self._owner is not None and was_live:
            self._owner.machine.daemon_eof()
        owner, self._owner = self._owner, None
        if owner is not None and owner.daemon is self:
            owner.daemon = None

    def pause_writing(self) -> None:
        if self.bridge is not None:
            self.bridge.writer.pause()
        if self._owner is not None:
            self._owner.pause_reason(daemon=True)
            self._owner.machine.daemon_flow(True)

    def resume_writing(self) -> None:
        if self.bridge is not None:
            self.bridge.writer.resume()
        if self._owner is not None:
            self._owner.pause_reason(daemon=False)
            self._owner.machine.daemon_flow(False)

    def open_bridge(self) -> Stream:
        assert self.transport is not None
        reader = BridgeReader(limit=MAX_HEAD_SIZE)
        reader.set_transport(self.transport)
        self.bridge = Stream(reader, TransportWriter(self.transport))
        return self.bridge

    def close_bridge(self) -> bool:
        """Back to the machine; False if the connection cannot be reused (unread bytes, EOF)."""
        bridge, self.bridge = self.bridge, None
        if bridge is None:
            return self.live
        return self.live and not bridge.reader.take_rest() and not bridge.reader.at_eof()

    def detach(self) -> None:
        """Close without telling the machine (it asked for the close)."""
        self._owner = None
        self.live = False
        if self.transport is not None:
            self.transport.close()


class DaemonLink:
    """The daemon connection as the hook path uses it (``connect`` → streams, ``discard``)."""

    __slots__ = ("_side",)

    def __init__(self, side: ClientSide) -> None:
        self._side = side

    async def connect(self) -> Stream:
        daemon = self._side.daemon
        if daemon is None or not daemon.live:
            daemon = await self._side.connect_daemon()
        return daemon.bridge or daemon.open_bridge()

    def discard(self) -> None:
        self._side.close_daemon()


class ClientSide(asyncio.Protocol):
    """One client connection: the machine's driver (it implements ``machine.Commands``)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.transport: Transportish | None = None
        self.machine: ConnectionMachine = None  # type: ignore[assignment]  # set in connection_made
        self.identity: ClientConnection | None = None
        self.daemon: DaemonSide | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.hooked_task: asyncio.Task[None] | None = None
        self._bridge: Stream | None = None
        self._connecting: asyncio.Task[DaemonSide] | None = None
        self._started = 0.0
        self._generation = 0
        self._routed = False  # the exchange in progress matched a route (even one relayed unhooked)
        self._judged_head: RequestHead | None = None  # the client's head of a judged exchange the machine relays
        # the last head this connection relayed unrouted, and the number of the generation that judged it: a
        # client repeating its request (the memo gives the same head object) is not judged again
        self._plain_head: RequestHead | None = None
        self._plain_generation = 0
        self._paused_by_machine = False
        self._paused_by_daemon = False
        self._reading_paused = False
        self._segments: Segments | None = None

    # ---- socket events -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        raw = transport.get_extra_info("raw_transport", transport)
        raw.set_write_buffer_limits(WRITE_HIGH_WATER)
        self._segments = Segments.of(raw)
        self.identity = ClientConnection(transport, peer_of(transport))  # type: ignore[arg-type]
        self.machine = ConnectionMachine(self, self.hub.timeouts, time.monotonic)
        self.hub.connections.add(self)
        if self.hub.draining:  # accepted just before the listener closed
            self.machine.stop()

    def data_received(self, data: bytes) -> None:
        if self._bridge is not None:
            self._bridge.reader.feed_data(data)
        else:
            self.machine.client_data(data)

    def eof_received(self) -> bool:
        self.machine.client_eof()
        if self._bridge is not None:
            self._bridge.reader.feed_eof()
        return True  # keep writing: a half-closed client still reads its answer

    def connection_lost(self, exc: Exception | None) -> None:
        self.hub.connections.discard(self)
        if self._segments is not None:
            self._segments.flush()  # its timer must not outlive the connection
        if self._bridge is not None:
            self._bridge.reader.feed_eof()
            self._bridge.writer.lost()
        self.machine.client_lost()
        self.close_daemon()
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        if self._bridge is not None:
            self._bridge.writer.pause()
        if self.daemon is not None and self.daemon.transport is not None:
            self.daemon.transport.pause_reading()

    def resume_writing(self) -> None:
        if self._bridge is not None:
            self._bridge.writer.resume()
        if self.daemon is not None and self.daemon.transport is not None and self.daemon.live:
            self.daemon.transport.resume_reading()

    def pause_reason(self, *, daemon: bool | None = None, machine: bool | None = None) -> None:
        if daemon is not None:
            self._paused_by_daemon = daemon
        if machine is not None:
            self._paused_by_machine = machine
        want = self._paused_by_daemon or self._paused_by_machine
        if want != self._reading_paused and self.transport is not None and not self.transport.is_closing():
            self._reading_paused = want
            (self.transport.pause_reading if want else self.transport.resume_reading)()  # type: ignore[attr-defined]

    # ---- the machine's commands ----------------------------------------------------------------

    def send_client(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)
            segments = self._segments
            if segments is not None and self.machine.phase is not _SPLICED:
                segments.wrote(len(data))  # a hijacked stream may be a TTY: its writes are never held

    def send_daemon(self, data: bytes) -> None:
        daemon = self.daemon
        if daemon is not None and daemon.transport is not None:
            daemon.transport.write(data)

    def open_daemon(self) -> bool:
        daemon = self.daemon
        if daemon is not None and daemon.live:
            return True
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._connect_for_machine())
        return False

    def close_daemon(self) -> None:
        daemon, self.daemon = self.daemon, None
        if daemon is not None:
            daemon.detach()
        if self._paused_by_daemon:
            self.pause_reason(daemon=False)

    def half_close_daemon(self) -> None:
        daemon = self.daemon
        if daemon is not None and daemon.transport is not None and daemon.transport.can_write_eof() \
                and not daemon.transport.is_closing():
            daemon.transport.write_eof()

    def half_close_client(self) -> None:
        transport = self.transport
        if transport is not None and transport.can_write_eof() and not transport.is_closing():
            transport.write_eof()

    def close_client(self) -> None:
        if self.transport is not None:
            self.transport.close()  # what was written is flushed first
        self.close_daemon()

    def pause_client(self, paused: bool) -> None:
        self.pause_reason(machine=paused)

    def dispatch(self, head: RequestHead) -> bool | Refusal:
        self._started = time.perf_counter()
        generation = self.hub.generations.current
        self._generation = generation.number
        if head is self._plain_head and generation.number == self._plain_generation:
            self._routed = False
            return False
        route = generation.runtime.routes.match(head.method, head.target)
        if route is None and exchange.is_dry_run(head):
            route = exchange.NO_HOOKS  # a dry run never reaches the daemon, hooked or not
        self._routed = route is not None
        if route is None:
            self._plain_head, self._plain_generation = head, generation.number
            return False
        if len(route.pre) == 1 and not route.post:  # its one hook may decide from the path alone
            assert self.identity is not None
            judged, refusal = exchange.judged_by_path(route, generation.runtime.adapters[route.pre[0].name],
                                                      head, self.identity.peer)
            if judged is None:
                return False  # relayed as if unhooked (recorded as routed)
            if refusal is not None:
                return Refusal(refusal.status, refusal.message)  # answered by the machine: no task, no bridge
        generation = self.hub.generations.lease()  # the same one: nothing ran in between
        assert self.transport is not None
        reader = BridgeReader(limit=MAX_HEAD_SIZE)
        reader.set_transport(self.transport)  # type: ignore[arg-type]
        rest = self.machine.take_buffered()
        if rest:
            reader.feed_data(rest)
        if self.machine.client_eof_seen:
            reader.feed_eof()
        self._bridge = Stream(reader, TransportWriter(self.transport))
        self.hooked_task = asyncio.get_running_loop().create_task(self._run_hooked(head, route, generation))
        return True

    def finished(self, head: RequestHead, outcome: Outcome) -> None:
        if self._segments is not None:
            self._segments.flush()
        if self._judged_head is not None:  # logged as the client sent it, as every hooked exchange
            head, self._judged_head = self._judged_head, None
        self._record(head.method, head.target, outcome, self._routed, self._generation,
                     time.perf_counter() - self._started)

    def refused(self, raw: bytes, outcome: Outcome) -> None:
        method, target = request_line_parts(raw)
        self._record(method, target, outcome, False, self.hub.generations.current.number, 0.0)

    # ---- daemon connections --------------------------------------------------------------------

    async def connect_daemon(self) -> DaemonSide:
        """A new daemon connection (raises DaemonUnavailable)."""
        settings = self.hub.settings
        address: Address = settings.upstream
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(settings.connect_timeout):
                if address.scheme == "unix":
                    _, daemon = await loop.create_unix_connection(lambda: DaemonSide(self), address.path)
                else:
                    _, daemon = await loop.create_connection(lambda: DaemonSide(self), address.host, address.port)
        except (OSError, TimeoutError) as exc:
            reason = (exc.strerror or str(exc) or type(exc).__name__) if isinstance(exc, OSError) else "timed out"
            raise DaemonUnavailable(
                f"powerstrip cannot connect to the Docker daemon at {address} ({reason}). "
                "Is the docker daemon running?"
            ) from None
        if self.machine.phase is Phase.CLOSED:
            daemon.detach()
            raise ConnectionResetError("the client went away")
        self.close_daemon()
        self.daemon = daemon
        return daemon

    async def _connect_for_machine(self) -> None:
        try:
            await self.connect_daemon()
        except DaemonUnavailable as exc:
            self._connecting = None
            self.machine.daemon_failed(str(exc))
            return
        except ConnectionError:
            self._connecting = None
            return
        self._connecting = None
        self.machine.daemon_connected()

    # ---- the hook path -------------------------------------------------------------------------

    async def _run_hooked(self, head: RequestHead, route: exchange.Route, generation: Generation) -> None:
        """The hook path as a task."""
        bridge = self._bridge
        assert bridge is not None and self.identity is not None
        outcome = Outcome(note="the exchange did not finish")
        judged: Judged | None = None
        try:
            result = await exchange.hooked(bridge, self.identity.peer, DaemonLink(self), head, route,
                                           generation.runtime.adapters, self.hub.settings.limits)
            if isinstance(result, Judged):
                judged = result
            else:
                outcome = result
        except MalformedMessage as exc:
            outcome = self._error(bridge, exc.status, f"powerstrip: {exc}", Side.CLIENT)
        except TimeoutError:
            outcome = self._error(bridge, 408, "the request body did not arrive in time", Side.CLIENT)
        except ConnectionError as exc:  # the client or the daemon left (PeerClosed too)
            log.debug("hooked exchange ended: %s", exc or type(exc).__name__)
            outcome.keep_alive = False
        except asyncio.CancelledError:
            outcome.keep_alive = False  # cut by the gateway's stop
        except Exception:  # a bug must cost one exchange, never the gateway
            log.exception("unexpected error in a hooked exchange")
            outcome = self._error(bridge, 500, "powerstrip: internal error", Side.GATEWAY)
        finally:
            self.hub.generations.release(generation)  # a judged request needs no adapter past this point
            if judged is None:
                self._record(head.method, head.target, outcome, True, generation.number,
                             time.perf_counter() - self._started)
            self._bridge = None
            self.hooked_task = None
        daemon = self.daemon
        daemon_open = daemon is not None and daemon.close_bridge()
        if daemon is not None and not daemon_open:
            self.close_daemon()
        if judged is not None:
            self._judged_head = head
            self.machine.hooked_forward(judged, bridge.reader.take_rest(), daemon_open)
        else:
            self.machine.hooked_done(outcome.keep_alive, bridge.reader.take_rest(), daemon_open)

    @staticmethod
    def _error(bridge: Stream, status: int, message: str, side: Side) -> Outcome:
        """An error the hook path raised: answered if nothing was sent yet, else the connection is cut."""
        if bridge.writer.written:
            return Outcome(note=message, fault=side)
        bridge.writer.write(error_response(status, message, False))
        return Outcome(status=status, note=message, fault=side)

    def _record(self, method: str, target: str, outcome: Outcome, hooked: bool, generation: int,
                seconds: float) -> None:
        log_exchange(method, target, outcome, seconds)
        observer = self.hub.observer
        if observer is not None and self.identity is not None:
            observer.exchanged(self.identity, ExchangeRecord(method, target, hooked, generation, outcome, seconds))

    # ---- the gateway's stop --------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.machine.busy

    def stop(self) -> None:
        """Close when idle, else after the exchange in progress."""
        self.machine.stop()

    def abort(self) -> None:
        """Cut the connection now (the drain time is over)."""
        if self.hooked_task is not None:
            self.hooked_task.cancel()
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]
        self.close_daemon()

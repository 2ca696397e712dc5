"""The gateway's listeners and lifetime: bind, serve connections, stop cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from powerstrip.proxy.access_log import ACCESS_LOG
from powerstrip.proxy.addresses import Address
from powerstrip.proxy.connection import ConnectionSettings, Observer
from powerstrip.proxy.driver import ClientSide, Hub
from powerstrip.proxy.generation import Generations
from powerstrip.proxy.tls import TlsClientSide


log = logging.getLogger("powerstrip")

BACKLOG = 4096  # as dockerd's listeners: a burst of connects must not be refused by the kernel
TICK = 0.5  # seconds between two checks of every connection's deadline (idle, head, body, linger)


@dataclass(frozen=True, slots=True)
class Listener:
    address: Address
    tls: ssl.SSLContext | None = None


class ListenerBusy(OSError):
    pass


def claim_unix_path(path: str) -> None:
    """Remove a stale socket file left by a crash, but never steal a live gateway's socket."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
    else:
        raise ListenerBusy(f"{path}: another process is listening on this socket")
    finally:
        probe.close()


class Gateway:
    """Owns the listening servers and the connections they accepted."""

    def __init__(self, generations: Generations, settings: ConnectionSettings, drain_timeout: float,
                 observer: Observer | None = None) -> None:
        self.generations = generations
        self._settings = settings
        self._drain_timeout = drain_timeout
        self._hub = Hub(generations, settings, settings.timeouts, observer, set())
        self._servers: list[asyncio.Server] = []
        self._unix_paths: list[str] = []
        self._ticker: asyncio.TimerHandle | None = None
        self.serving = False  # all listeners up, not stopping

    @property
    def draining(self) -> bool:
        return self._hub.draining

    @property
    def open_connections(self) -> int:
        return len(self._hub.connections)

    @property
    def open_streams(self) -> int:
        """Responses relayed as streams right now by the relay machine (the hook path counts its own)."""
        return sum(1 for side in self._hub.connections if side.machine.streaming)

    def _tick(self) -> None:
        """One periodic callback for every connection's deadline: no timer per request or connection."""
        now = time.monotonic()
        for side in list(self._hub.connections):
            deadline = side.machine.deadline
            if deadline and deadline <= now:
                side.machine.timer_fired()
        self._ticker = asyncio.get_running_loop().call_later(TICK, self._tick)

    async def start(self, listeners: list[Listener]) -> None:
        loop = asyncio.get_running_loop()
        hub = self._hub
        for listener in listeners:
            address, tls = listener.address, listener.tls
            factory: Callable[[], asyncio.Protocol] = (
                (lambda tls=tls: TlsClientSide(hub, tls)) if tls is not None else (lambda: ClientSide(hub)))
            if address.scheme == "unix":
                claim_unix_path(address.path)
                server = await loop.create_unix_server(factory, address.path, backlog=BACKLOG)
                os.chmod(address.path, 0o660)
                self._unix_paths.append(address.path)
            else:
                server = await loop.create_server(factory, address.host, address.port, backlog=BACKLOG,
                                                  reuse_address=True)
            self._servers.append(server)
            log.info("listening on %s%s", address, " (TLS)" if tls else "")
        self._ticker = loop.call_later(TICK, self._tick)
        self.serving = True

    async def stop(self, cut: asyncio.Event | None = None) -> None:
        """Stop accepting and close idle connections at once; give exchanges in progress
        ``drain_timeout`` seconds to finish (their connections close after them), then cut what is
        left: streams (events, logs -f, attach) and anything slower. ``cut`` set ends the wait early."""
        self.serving = False
        self._hub.draining = True
        for server in self._servers:
            server.close()
        for path in self._unix_paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        for side in list(self._hub.connections):
            side.stop()
        busy = [side for side in self._hub.connections if side.busy]
        if busy:
            log.info("draining: waiting up to %gs for %d request(s) in progress", self._drain_timeout, len(busy))
            pending = await _drain({side.closed for side in self._hub.connections}, self._drain_timeout,
                                   cut or asyncio.Event())
            if pending:
                log.warning("drain %s: closing %d connection(s) still busy (streams or slow requests)",
                            "cut short" if cut is not None and cut.is_set() else "timeout", len(pending))
        for side in list(self._hub.connections):
            side.abort()
        await asyncio.gather(*(side.closed for side in list(self._hub.connections)), return_exceptions=True)
        if self._ticker is not None:
            self._ticker.cancel()


async def _drain(tasks: set[asyncio.Future[None]], timeout: float, cut: asyncio.Event) -> set[asyncio.Future[None]]:
    """Wait until the futures are done, ``timeout`` passes or ``cut`` is set; returns those still pending."""
    cut_waiter = asyncio.ensure_future(cut.wait())
    pending = set(tasks)
    try:
        async with asyncio.timeout(timeout):
            while pending and not cut.is_set():
                await asyncio.wait(pending | {cut_waiter}, return_when=asyncio.FIRST_COMPLETED)
                pending = {task for task in pending if not task.done()}
    except TimeoutError:
        pass
    finally:
        cut_waiter.cancel()
    return {task for task in tasks if not task.done()}


async def run_until_signalled(
    gateway: Gateway, listeners: list[Listener], on_ready: Callable[[], None],
    on_hangup: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then drain (a second signal cuts the drain short);
    SIGHUP calls ``on_hangup`` (reload the config)."""
    stopping, cut = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_stop_signal() -> None:
        (cut if stopping.is_set() else stopping).set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_stop_signal)
    if on_hangup is not None:
        loop.add_signal_handler(signal.SIGHUP, on_hangup)
    await gateway.start(listeners)
    on_ready()
    await stopping.wait()
    ACCESS_LOG.flush()
    log.info("stopping: no new connections (a second SIGTERM/SIGINT cuts the drain short)")
    await gateway.stop(cut)
    ACCESS_LOG.flush()
    log.info("stopped")

"""The gateway's listeners and lifetime: bind, serve connections, stop cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from powerstrip.http.head import MAX_HEAD_SIZE
from powerstrip.proxy.access_log import ACCESS_LOG
from powerstrip.proxy.addresses import Address
from powerstrip.proxy.connection import ClientConnection, ConnectionSettings, Observer, handle_connection
from powerstrip.proxy.generations import Generations

log = logging.getLogger("powerstrip")


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
        self._observer = observer
        self._servers: list[asyncio.Server] = []
        self._unix_paths: list[str] = []
        self._connections: dict[asyncio.Task[None], ClientConnection] = {}
        self.serving = False  # all listeners up, not stopping
        self.draining = False

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.draining:  # accepted just before the listener closed
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        client = ClientConnection(writer)
        self._connections[task] = client
        try:
            await handle_connection(client, reader, self.generations, self._settings, self._observer)
        except asyncio.CancelledError:
            # cut by stop(); not re-raised: asyncio's stream callback logs a cancelled task as an error
            writer.close()
        except Exception:  # a bug must cost one connection, never the gateway
            log.exception("unexpected error on a client connection")
            writer.close()
        finally:
            self._connections.pop(task, None)

    async def start(self, listeners: list[Listener]) -> None:
        for listener in listeners:
            address = listener.address
            if address.scheme == "unix":
                claim_unix_path(address.path)
                server = await asyncio.start_unix_server(
                    self._on_connection, address.path, limit=MAX_HEAD_SIZE, ssl=listener.tls
                )
                os.chmod(address.path, 0o660)
                self._unix_paths.append(address.path)
            else:
                server = await asyncio.start_server(
                    self._on_connection, address.host, address.port, limit=MAX_HEAD_SIZE, ssl=listener.tls
                )
            self._servers.append(server)
            log.info("listening on %s%s", address, " (TLS)" if listener.tls else "")
        self.serving = True

    async def stop(self, cut: asyncio.Event | None = None) -> None:
        """Stop accepting and close idle connections at once; give exchanges in progress
        ``drain_timeout`` seconds to finish (their connections close after them), then cut what is
        left: streams (events, logs -f, attach) and anything slower. ``cut`` set ends the wait early."""
        self.serving, self.draining = False, True
        for server in self._servers:
            server.close()
        for path in self._unix_paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        for task, client in list(self._connections.items()):
            client.closing = True
            if not client.busy:
                task.cancel()
        busy = sum(client.busy for client in self._connections.values())
        if busy:
            log.info("draining: waiting up to %gs for %d request(s) in progress", self._drain_timeout, busy)
            pending = await _drain(set(self._connections), self._drain_timeout, cut or asyncio.Event())
            if pending:
                log.warning("drain %s: closing %d connection(s) still busy (streams or slow requests)",
                            "cut short" if cut is not None and cut.is_set() else "timeout", len(pending))
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)


async def _drain(tasks: set[asyncio.Task[None]], timeout: float, cut: asyncio.Event) -> set[asyncio.Task[None]]:
    """Wait until the tasks end, ``timeout`` passes or ``cut`` is set; returns the tasks still running."""
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

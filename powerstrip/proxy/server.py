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

    async def stop(self) -> None:
        """Stop accepting and close idle connections at once; give exchanges in progress
        ``drain_timeout`` seconds to finish (their connections close after them), then cut what is
        left: streams (events, logs -f, attach) and anything slower."""
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
            _, pending = await asyncio.wait(set(self._connections), timeout=self._drain_timeout)
            if pending:
                log.warning("drain timeout: closing %d connection(s) still busy (streams or slow requests)",
                            len(pending))
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)


async def run_until_signalled(
    gateway: Gateway, listeners: list[Listener], on_ready: Callable[[], None],
    on_hangup: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then drain; SIGHUP calls ``on_hangup`` (reload the config)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    if on_hangup is not None:
        loop.add_signal_handler(signal.SIGHUP, on_hangup)
    await gateway.start(listeners)
    on_ready()
    await stopping.wait()
    log.info("stopping: no new connections")
    await gateway.stop()
    log.info("stopped")

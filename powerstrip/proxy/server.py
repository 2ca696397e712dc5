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
from powerstrip.proxy.connection import ConnectionSettings, Runtime, handle_connection

log = logging.getLogger("powerstrip")


@dataclass(frozen=True, slots=True)
class Listener:
    address: Address
    tls: ssl.SSLContext | None = None


class ListenerBusy(OSError):
    pass


def _claim_unix_path(path: str) -> None:
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

    def __init__(self, runtime: Runtime, settings: ConnectionSettings, drain_timeout: float) -> None:
        self._runtime = runtime
        self._settings = settings
        self._drain_timeout = drain_timeout
        self._servers: list[asyncio.Server] = []
        self._unix_paths: list[str] = []
        self._connections: set[asyncio.Task[None]] = set()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await handle_connection(reader, writer, self._runtime, self._settings)
        except asyncio.CancelledError:
            writer.close()
            raise
        except Exception:  # a bug must cost one connection, never the gateway
            log.exception("unexpected error on a client connection")
            writer.close()
        finally:
            self._connections.discard(task)

    async def start(self, listeners: list[Listener]) -> None:
        for listener in listeners:
            address = listener.address
            if address.scheme == "unix":
                _claim_unix_path(address.path)
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

    async def stop(self) -> None:
        """Stop accepting, give open exchanges ``drain_timeout`` seconds, then cut what is left."""
        for server in self._servers:
            server.close()
        for path in self._unix_paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if self._connections:
            await asyncio.wait(set(self._connections), timeout=self._drain_timeout)
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)


async def run_until_signalled(gateway: Gateway, listeners: list[Listener], on_ready: Callable[[], None]) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await gateway.start(listeners)
    on_ready()
    await stopping.wait()
    log.info("stopping")
    await gateway.stop()

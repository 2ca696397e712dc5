"""The driver corks a bulk response body to a TCP client, and never a hijacked stream.

``ClientSide`` and ``DaemonSide`` with stand-in transports (no event loop I/O, no dockerd): the client's
transport carries a real loopback TCP socket, whose ``TCP_CORK`` the kernel reports as the oracle.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from powerstrip.config.model import Config
from powerstrip.config.routes import RouteTable
from powerstrip.http.machine import Phase, Timeouts
from powerstrip.proxy.addresses import Address
from powerstrip.proxy.connection import ConnectionSettings
from powerstrip.proxy.driver import ClientSide, DaemonSide, Hub
from powerstrip.proxy.exchange import Limits
from powerstrip.proxy.generation import Runtime
from powerstrip.proxy.segments import BULK_WRITE
from powerstrip.runtime.generations import Generation, Generations


class Transport:
    """What the driver asks of a transport; writes are kept, ``socket`` and the addresses are a real socket's."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.sock = sock
        self.written = bytearray()

    def write(self, data: bytes) -> None:
        self.written += data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if self.sock is None:
            return default
        return {"socket": self.sock, "peername": self.sock.getpeername(), "sockname": self.sock.getsockname()}.get(name, default)

    def is_closing(self) -> bool:
        return False

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def close(self) -> None:
        pass


def corked(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK))


def connected(sock: socket.socket) -> tuple[ClientSide, DaemonSide, Transport]:
    """A client connection whose daemon connection is open; returns the sides and the client's transport."""
    config = Config(path=None)
    generation = Generation(1, config, None, Runtime(RouteTable(config), {}))  # type: ignore[arg-type]
    timeouts = Timeouts(120, 10, 60, 2)
    settings = ConnectionSettings(Address("unix", "/nonexistent/docker.sock"), timeouts, 5.0, Limits(1 << 20, 60, 2, 2))
    hub = Hub(Generations(generation), settings, timeouts, None, set())
    client_transport = Transport(sock)
    client = ClientSide(hub)
    client.connection_made(client_transport)  # type: ignore[arg-type]
    daemon = DaemonSide(client)
    daemon.connection_made(Transport())  # type: ignore[arg-type]
    client.daemon = daemon
    client.machine.daemon_connected()
    return client, daemon, client_transport


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_a_bulk_body_is_corked_until_its_exchange_ends(accepted: socket.socket) -> None:
    async def scenario() -> None:
        client, daemon, transport = connected(accepted)
        client.data_received(b"GET /containers/x/logs?stdout=1 HTTP/1.1\r\nHost: docker\r\n\r\n")
        daemon.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"x" * 100))
        assert not corked(accepted)  # a head and a small chunk: sent at once
        daemon.data_received(chunk(b"y" * BULK_WRITE))
        assert corked(accepted)
        daemon.data_received(chunk(b"z" * 10))  # a small write in the same body keeps it corked
        assert corked(accepted)
        daemon.data_received(b"0\r\n\r\n")
        assert not corked(accepted)  # the exchange is over: its tail is pushed
        assert client.machine.phase is Phase.IDLE
        assert transport.written.endswith(b"0\r\n\r\n")

    asyncio.run(scenario())


def test_a_hijacked_stream_is_never_corked(accepted: socket.socket) -> None:
    async def scenario() -> None:
        client, daemon, transport = connected(accepted)
        client.data_received(b"POST /exec/x/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        daemon.data_received(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        assert client.machine.phase is Phase.SPLICED
        daemon.data_received(b"t" * (2 * BULK_WRITE))  # a TTY printing a file
        assert not corked(accepted)
        assert transport.written.endswith(b"t" * (2 * BULK_WRITE))

    asyncio.run(scenario())

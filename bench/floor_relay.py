"""``python -m bench.floor_relay PORT SOCKET``: the least a Python relay on uvloop can cost — bytes from each
client connection written to its own daemon connection and back, no parsing, no log, no hooks.

Not a product: the ``floor`` line of ``bench.relay_ab``, so the relay's own Python work per request can be
read off as the difference (what uvloop's callbacks and the system calls cost is in both).
"""

from __future__ import annotations

import asyncio
import sys

import uvloop


class _Daemon(asyncio.Protocol):
    def __init__(self, client: _Client) -> None:
        self._client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._client.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._client.transport.close()


class _Client(asyncio.Protocol):
    def __init__(self, socket_path: str) -> None:
        self._socket_path = socket_path
        self._daemon: _Daemon | None = None
        self._early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        _, self._daemon = await asyncio.get_running_loop().create_unix_connection(
            lambda: _Daemon(self), self._socket_path)
        for data in self._early:
            self._daemon.transport.write(data)

    def data_received(self, data: bytes) -> None:
        if self._daemon is None:
            self._early.append(data)
        else:
            self._daemon.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._daemon is not None:
            self._daemon.transport.close()


async def _serve(port: int, socket_path: str) -> None:
    server = await asyncio.get_running_loop().create_server(lambda: _Client(socket_path), "127.0.0.1", port)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(_serve(int(sys.argv[1]), sys.argv[2]))

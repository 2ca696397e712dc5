"""The daemon side of one client connection: opened on first use, reopened after the daemon closed it."""

from __future__ import annotations

import asyncio

from powerstrip.proxy.addresses import Address, open_connection


class DaemonUnavailable(ConnectionError):
    """The Docker daemon cannot be reached; the client gets a 502 and the next request tries again."""


class UpstreamLink:
    __slots__ = ("_address", "_limit", "_connect_timeout", "reader", "writer")

    def __init__(self, address: Address, limit: int, connect_timeout: float) -> None:
        self._address = address
        self._limit = limit
        self._connect_timeout = connect_timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A live connection: the kept-alive one, or a new one if there is none or the daemon closed it."""
        if self.reader is not None and self.writer is not None:
            if not self.reader.at_eof() and not self.writer.is_closing():
                return self.reader, self.writer
            self.discard()
        try:
            async with asyncio.timeout(self._connect_timeout):
                self.reader, self.writer = await open_connection(self._address, self._limit)
        except (OSError, TimeoutError) as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__ if isinstance(exc, OSError) else "timed out"
            raise DaemonUnavailable(
                f"powerstrip cannot connect to the Docker daemon at {self._address} ({reason}). "
                "Is the docker daemon running?"
            ) from None
        return self.reader, self.writer

    def discard(self) -> None:
        """Drop the connection (after an error, a hijack or a response that ends with close)."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

"""The coroutine world's view of a connection the Protocol driver owns: a stream reader and writer.

The relay runs on ``asyncio.Protocol`` callbacks; the hook path (body de-framing, the hook chains,
post-hooks) is written as coroutines over ``StreamReader``-style reads. While a hooked exchange
runs, the driver feeds what arrives into a ``BridgeReader`` and the coroutine writes through a
``TransportWriter``; when it ends, the bytes it did not read go back to the driver.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple, Protocol


class Transportish(Protocol):
    """What a bridge writes to: an asyncio transport, or the TLS layer in front of one."""

    def write(self, data: bytes) -> None: ...
    def write_eof(self) -> None: ...
    def can_write_eof(self) -> bool: ...
    def is_closing(self) -> bool: ...
    def close(self) -> None: ...
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


class BridgeReader(asyncio.StreamReader):
    """A StreamReader the driver feeds; ``take_rest`` hands back what the coroutine left unread."""

    def take_ready(self, size: int) -> bytes | None:
        """The next ``size`` bytes if they are already here (a body that came with its head), else None."""
        buffer = self._buffer
        if len(buffer) < size:
            return None
        data = bytes(buffer[:size])
        del buffer[:size]
        self._maybe_resume_transport()  # type: ignore[attr-defined]  # as a read would
        return data

    def take_rest(self) -> bytes:
        rest = bytes(self._buffer)  # the stdlib keeps its buffer here; there is no public way to take it
        self._buffer.clear()
        return rest


class TransportWriter:
    """The StreamWriter calls the hook path makes, on a transport the driver owns.

    ``drain`` waits while the transport is above its high-water mark (the driver calls
    ``pause``/``resume`` from the protocol's ``pause_writing``/``resume_writing``) and raises
    ConnectionResetError once the connection is gone, so a coroutine writing to a client that
    left ends as an ordinary "peer closed", never as an error in the log.
    """

    __slots__ = ("_transport", "_resumed", "_lost", "written")

    def __init__(self, transport: Transportish) -> None:
        self._transport = transport
        self._resumed: asyncio.Future[None] | None = None
        self._lost = False
        self.written = 0  # bytes written: an error found later can only close, not answer

    def write(self, data: bytes) -> None:
        if self._lost or self._transport.is_closing():
            return
        self.written += len(data)
        self._transport.write(data)

    async def drain(self) -> None:
        if self._lost or self._transport.is_closing():
            raise ConnectionResetError("the connection is closed")
        if self._resumed is not None:
            await self._resumed

    def pause(self) -> None:
        if self._resumed is None:
            self._resumed = asyncio.get_running_loop().create_future()

    def resume(self) -> None:
        resumed, self._resumed = self._resumed, None
        if resumed is not None and not resumed.done():
            resumed.set_result(None)

    def lost(self) -> None:
        self._lost = True
        resumed, self._resumed = self._resumed, None
        if resumed is not None and not resumed.done():
            resumed.set_exception(ConnectionResetError("the connection is closed"))
            resumed.exception()  # retrieved here: nobody may be waiting

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        if not self._lost and not self._transport.is_closing():
            self._transport.write_eof()

    def is_closing(self) -> bool:
        return self._lost or self._transport.is_closing()

    def close(self) -> None:
        self._transport.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)


class Stream(NamedTuple):
    """One side of a hooked exchange: what it reads and where it writes."""

    reader: BridgeReader
    writer: TransportWriter

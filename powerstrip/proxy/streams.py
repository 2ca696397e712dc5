"""Moving HTTP message bodies between asyncio streams without reading past their end.

Every read asks for at most what the current message still owns (a head up to its blank line, the
rest of a Content-Length body, one chunk line or chunk), so the bytes that follow a message stay
in the reader for whoever comes next: the next request on a keep-alive connection, or the raw
stream after a 101.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from powerstrip.http.framing import ChunkedScanner
from powerstrip.http.head import HEAD_END, Framing, MalformedMessage
from powerstrip.proxy.bridge import Stream

CHUNK = 256 * 1024
WATCH_AFTER = 0.05  # seconds an exchange runs before a PeerWatch starts reading the client's side
T = TypeVar("T")


class PeerClosed(ConnectionError):
    """The peer closed the connection in the middle of a message."""


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than the limit of {limit} bytes")
        self.limit = limit


async def read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The next message head, or None if the peer closed cleanly before sending one."""
    try:
        return await reader.readuntil(HEAD_END)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise PeerClosed("connection closed inside a message head") from None
    except asyncio.LimitOverrunError:
        raise MalformedMessage("message head too large", 431) from None


class ChunkedReader:
    """Reads a chunked body piece by piece: each piece is the raw bytes and their decoded payload."""

    __slots__ = ("_reader", "_scanner")

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._scanner = ChunkedScanner()

    @property
    def done(self) -> bool:
        return self._scanner.done

    async def next_piece(self) -> tuple[bytes, list[bytes]]:
        want = self._scanner.data_remaining
        try:
            if want:
                raw = await self._reader.read(min(want, CHUNK))
                if not raw:
                    raise PeerClosed("connection closed inside a chunked body")
            else:
                raw = await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            raise PeerClosed("connection closed inside a chunked body") from None
        except asyncio.LimitOverrunError:
            raise MalformedMessage("chunked body: line too long") from None
        _, payload = self._scanner.feed(raw)
        return raw, payload

    async def relay_response(self, writer: asyncio.StreamWriter) -> bool:
        """Relay the rest of a chunked *response* in blocks of whatever has arrived, many chunks a write.

        A response may be read ahead: the daemon sends nothing after it until it gets the next
        request. Returns False if it did (the bytes past the body are dropped, the connection must
        not be reused).
        """
        while not self._scanner.done:
            data = await self._reader.read(CHUNK)
            if not data:
                raise PeerClosed("connection closed inside a chunked body")
            consumed, _ = self._scanner.feed(data, collect=False)
            writer.write(data if consumed == len(data) else data[:consumed])
            await writer.drain()
            if consumed < len(data):
                return False
        return True


async def copy_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, framing: Framing, length: int,
    chunks: ChunkedReader | None = None, pause: float | None = None,
) -> None:
    """Relay one body as it is framed on the wire, streaming, flow-controlled by ``drain``.

    ``chunks`` continues a chunked body that was already partly read. ``pause``: the longest wait for the
    next bytes (``TimeoutError`` after it); None, as long as it takes.
    """
    if framing is Framing.LENGTH:
        remaining = length
        while remaining:
            data = await asyncio.wait_for(reader.read(min(remaining, CHUNK)), pause)
            if not data:
                raise PeerClosed("connection closed inside a body")
            writer.write(data)
            remaining -= len(data)
            await writer.drain()
    elif framing is Framing.CHUNKED:
        chunks = chunks or ChunkedReader(reader)
        while not chunks.done:
            raw, _ = await asyncio.wait_for(chunks.next_piece(), pause)
            writer.write(raw)
            if len(raw) > 2 or chunks.done:
                await writer.drain()
    elif framing is Framing.UNTIL_CLOSE:
        await copy_until_eof(reader, writer)


async def read_body(reader: asyncio.StreamReader, framing: Framing, length: int, limit: int) -> bytes:
    """The whole de-framed body, refusing (never truncating) one over ``limit`` bytes."""
    if framing is Framing.NONE:
        return b""
    if framing is Framing.LENGTH:
        if length > limit:
            raise BodyTooLarge(limit)
        try:
            return await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise PeerClosed("connection closed inside a body") from None
    if framing is Framing.CHUNKED:
        chunks = ChunkedReader(reader)
        parts: list[bytes] = []
        size = 0
        while not chunks.done:
            _, payload = await chunks.next_piece()
            for part in payload:
                size += len(part)
                if size > limit:
                    raise BodyTooLarge(limit)
                parts.append(part)
        return b"".join(parts)
    raise ValueError(f"cannot read a body framed {framing.value} as a whole")


async def _peer_left(reader: asyncio.StreamReader) -> bool:
    """Wait for the peer's EOF; bytes that arrive instead are put back for the next reader."""
    data = await reader.read(CHUNK)
    if not data:
        return True
    if not reader.at_eof():
        reader.feed_data(data)  # the buffer was empty, so this restores the bytes at its front
    return False


class PeerWatch:
    """While the daemon works, watch the client's side; if the client closes it, cancel the waiting task.

    Like Go's request context: without it, a client that gives up on a long poll (``wait``,
    ``events`` with nothing to report) would keep its daemon connection open until the daemon
    happens to write. This sits on every request's path, so it costs a timer and nothing more for
    the usual answer that comes within WATCH_AFTER seconds: only then does one watcher task start
    (never a task around the work). Only use it while nothing else reads the client's reader
    (``stop()`` before a splice takes the reader over).
    """

    __slots__ = ("_reader", "_task", "_timer", "_watcher", "left")

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._task = asyncio.current_task()
        self._timer: asyncio.TimerHandle | None = None
        self._watcher: asyncio.Future[None] | None = None
        self.left = False

    def _start(self) -> None:
        self._timer = None
        self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        try:
            left = await _peer_left(self._reader)
        except ConnectionError:  # a reset is a client that left, too
            left = True
        if left:
            self.left = True
            assert self._task is not None
            self._task.cancel()

    async def stop(self) -> None:
        """Stop watching (idempotent); the client's reader is free again afterwards."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        watcher, self._watcher = self._watcher, None
        if watcher is not None and not watcher.done():
            watcher.cancel()
            try:
                await watcher
            except asyncio.CancelledError:
                if self._task is not None and self._task.cancelling():
                    raise  # our own task is being cancelled (the gateway stops), not just the watcher

    async def __aenter__(self) -> "PeerWatch":
        self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER, self._start)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        left = self.left
        await self.stop()
        # Take back our own cancel; if nobody else cancelled the task, the exchange ends as PeerClosed.
        if left and self._task is not None and self._task.uncancel() == 0 \
                and exc_type in (None, asyncio.CancelledError):
            raise PeerClosed("the client went away") from None


async def unless_peer_leaves(reader: asyncio.StreamReader, work: Awaitable[T]) -> T:
    """Await ``work``, ending it with PeerClosed if the client closes its side first (see PeerWatch)."""
    async with PeerWatch(reader):
        return await work


async def discard_input(reader: asyncio.StreamReader, limit: int, timeout: float) -> None:
    """Read and drop what the peer is still sending (bounded), so an early error reply reaches it.

    Closing a socket with unread input makes the kernel send a reset, and the client may then
    lose the reply it was sent (the "lingering close" of RFC 9112 section 9.6).
    """
    try:
        async with asyncio.timeout(timeout):
            while limit > 0 and (data := await reader.read(CHUNK)):
                limit -= len(data)
    except (TimeoutError, ConnectionError):
        pass


async def copy_until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until the reader's EOF, then half-close the writer so the peer sees the EOF too."""
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof() and not writer.is_closing():
        writer.write_eof()


async def splice(client: Stream, upstream: Stream, linger: float) -> None:
    """Relay a hijacked connection both ways, passing each side's half-close on to the other.

    Output (upstream → client) flows for as long as the daemon sends it; once the daemon has
    finished, input still in flight gets ``linger`` seconds before the session is torn down.
    """
    to_upstream = asyncio.ensure_future(copy_until_eof(client.reader, upstream.writer))
    to_client = asyncio.ensure_future(copy_until_eof(upstream.reader, client.writer))
    try:
        done, _ = await asyncio.wait({to_upstream, to_client}, return_when=asyncio.FIRST_COMPLETED)
        if to_upstream in done and to_upstream.exception() is None:
            await to_client
        elif to_client in done and to_client.exception() is None:
            await asyncio.wait({to_upstream}, timeout=linger)
    finally:
        for task in (to_upstream, to_client):
            task.cancel()
        await asyncio.gather(to_upstream, to_client, return_exceptions=True)

"""The relay's stream helpers without sockets: block-wise chunked responses, and the client watch."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerstrip.proxy import streams
from powerstrip.proxy.streams import ChunkedReader, PeerClosed, PeerWatch


class Sink:
    """A StreamWriter stand-in that keeps what was written."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.data += data
        self.writes += 1

    async def drain(self) -> None:
        pass


def chunked(pieces: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"


async def relay(wire: bytes, split: int) -> tuple[bool, Sink]:
    reader = asyncio.StreamReader()
    sink = Sink()
    job = asyncio.ensure_future(ChunkedReader(reader).relay_response(sink))
    for start in range(0, len(wire), split):
        reader.feed_data(wire[start:start + split])
        await asyncio.sleep(0)
    return await asyncio.wait_for(job, 5), sink


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=300), max_size=20), st.integers(1, 400))
def test_a_chunked_response_is_relayed_byte_for_byte_in_blocks(pieces, split):
    wire = chunked(pieces)
    clean, sink = asyncio.run(relay(wire, split))
    assert clean and bytes(sink.data) == wire


def test_many_small_chunks_go_out_in_few_writes():
    wire = chunked([b"x" * 100] * 1000)
    sink = Sink()

    async def run() -> bool:
        reader = asyncio.StreamReader()
        reader.feed_data(wire)
        return await ChunkedReader(reader).relay_response(sink)
    assert asyncio.run(run())
    assert bytes(sink.data) == wire and sink.writes <= 2


def test_bytes_after_a_response_are_dropped_and_the_connection_is_not_reused():
    wire = chunked([b"hello"])
    clean, sink = asyncio.run(relay(wire + b"HTTP/1.1 200 OK\r\n", 1000))
    assert not clean and bytes(sink.data) == wire


def test_a_response_cut_short_is_an_error():
    async def run() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(b"5\r\nhel")
        reader.feed_eof()
        await ChunkedReader(reader).relay_response(Sink())
    with pytest.raises(PeerClosed):
        asyncio.run(run())


@pytest.fixture(params=[0.0, 0.05], ids=["watching-at-once", "watching-after-delay"])
def watch_after(request, monkeypatch):
    monkeypatch.setattr(streams, "WATCH_AFTER", request.param)


def test_a_client_that_leaves_ends_the_wait(watch_after):
    async def run() -> None:
        reader = asyncio.StreamReader()
        never = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.1, reader.feed_eof)
        async with PeerWatch(reader):
            await never
    with pytest.raises(PeerClosed):
        asyncio.run(asyncio.wait_for(run(), 5))


def test_work_that_ends_first_leaves_no_cancellation_behind(watch_after):
    async def run() -> bytes:
        reader = asyncio.StreamReader()
        async with PeerWatch(reader):
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.01)  # a stray cancel would land here
        reader.feed_data(b"GET /next")  # the next request is still there for the next reader
        return await reader.read(100)
    assert asyncio.run(run()) == b"GET /next"


def test_bytes_from_the_client_are_kept_for_the_next_request(watch_after):
    async def run() -> bytes:
        reader = asyncio.StreamReader()
        asyncio.get_running_loop().call_later(0.08, reader.feed_data, b"GET /pipelined")
        async with PeerWatch(reader):
            await asyncio.sleep(0.2)
        return await reader.read(100)
    assert asyncio.run(run()) == b"GET /pipelined"


def test_a_gateway_stop_still_cancels(watch_after):
    async def run() -> None:
        reader = asyncio.StreamReader()

        async def exchange() -> None:
            async with PeerWatch(reader):
                await asyncio.sleep(10)

        task = asyncio.ensure_future(exchange())
        await asyncio.sleep(0.1)
        reader.feed_eof()  # the client leaves ...
        task.cancel()      # ... while the gateway stops
        await task
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run())

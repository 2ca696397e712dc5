"""TCP_CORK follows the relayed writes: on for a bulk body, off when it ends or slows down.

The kernel's own socket option is the oracle: a real loopback TCP connection, read with getsockopt.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from powerstrip.proxy import segments as segments_module
from powerstrip.proxy.segments import BULK_BYTES, BULK_WRITE, CHECK_SECONDS, Segments


class SocketOnly:
    """What ``Segments.of`` asks of a transport."""

    def __init__(self, sock: socket.socket | None) -> None:
        self._sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._sock if name == "socket" else default


def corked(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK))


def test_answers_leave_at_once_and_a_bulk_body_is_corked_until_the_exchange_ends(accepted: socket.socket) -> None:
    async def scenario() -> None:
        segments = Segments.of(SocketOnly(accepted))
        assert segments is not None
        segments.wrote(400)  # a response head, a small answer
        assert not corked(accepted)
        segments.wrote(BULK_WRITE)
        assert corked(accepted)
        segments.wrote(1015)  # a single line in a bulk body: no switch per write
        assert corked(accepted)
        segments.flush()
        assert not corked(accepted)
        segments.flush()  # an exchange with no bulk write changes nothing
        assert not corked(accepted)
        await asyncio.sleep(CHECK_SECONDS * 3)  # the flush cancelled the pace check: nothing fires late
        assert not corked(accepted)

    asyncio.run(scenario())


def test_a_body_that_keeps_its_pace_stays_corked_and_one_that_slows_is_uncorked(
        accepted: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    check = 0.2  # long enough that a loaded machine's scheduling delays do not skip a check
    monkeypatch.setattr(segments_module, "CHECK_SECONDS", check)

    async def scenario() -> None:
        segments = Segments.of(SocketOnly(accepted))
        assert segments is not None
        segments.wrote(BULK_WRITE)
        for _ in range(4):  # a full check's worth in every check: still a bulk body
            segments.wrote(BULK_BYTES)
            await asyncio.sleep(check * 0.4)
            assert corked(accepted)
            await asyncio.sleep(check * 0.4)
        segments.wrote(100)  # ``logs --follow`` caught up: a line now and then
        await asyncio.sleep(check * 4)
        assert not corked(accepted)  # the tail is not held for the kernel's 200 ms
        segments.wrote(100)
        assert not corked(accepted)

    asyncio.run(scenario())


def test_a_unix_socket_has_no_segments_to_cut() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        assert Segments.of(SocketOnly(left)) is None
    assert Segments.of(SocketOnly(None)) is None


def test_a_socket_already_gone_is_no_error(accepted: socket.socket) -> None:
    async def scenario() -> None:
        segments = Segments.of(SocketOnly(accepted))
        assert segments is not None
        accepted.close()
        segments.wrote(BULK_WRITE)
        segments.flush()
        await asyncio.sleep(CHECK_SECONDS * 2)

    asyncio.run(scenario())

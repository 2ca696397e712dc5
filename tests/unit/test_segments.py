"""TCP_NODELAY follows the relayed writes: off for a bulk body, on again when the exchange ends.

The kernel's own socket option is the oracle: a real loopback TCP connection, read with getsockopt.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from powerstrip.proxy.segments import BULK_WRITE, Segments


class SocketOnly:
    """What ``Segments.of`` asks of a transport."""

    def __init__(self, sock: socket.socket | None) -> None:
        self._sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._sock if name == "socket" else default


@pytest.fixture
def accepted() -> Iterator[socket.socket]:
    """The server side of a loopback TCP connection, with TCP_NODELAY set as asyncio sets it."""
    with socket.create_server(("127.0.0.1", 0)) as listener, \
            socket.create_connection(listener.getsockname()) as client:
        server, _ = listener.accept()
        with server:
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            yield server
        client.close()


def nodelay(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def test_answers_leave_at_once_and_a_bulk_body_is_coalesced_until_the_exchange_ends(accepted: socket.socket) -> None:
    segments = Segments.of(SocketOnly(accepted))
    assert segments is not None
    segments.wrote(400)  # a response head, a small answer
    assert nodelay(accepted)
    segments.wrote(BULK_WRITE)
    assert not nodelay(accepted)
    segments.wrote(1015)  # a stream catching up keeps coalescing: no switch per line
    assert not nodelay(accepted)
    segments.flush()
    assert nodelay(accepted)
    segments.flush()  # an exchange with no bulk write changes nothing
    assert nodelay(accepted)


def test_a_unix_socket_has_no_segments_to_cut() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        assert Segments.of(SocketOnly(left)) is None
    assert Segments.of(SocketOnly(None)) is None


def test_a_socket_already_gone_is_no_error(accepted: socket.socket) -> None:
    segments = Segments.of(SocketOnly(accepted))
    assert segments is not None
    accepted.close()
    segments.wrote(BULK_WRITE)
    segments.flush()

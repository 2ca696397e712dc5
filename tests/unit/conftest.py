"""Fixtures shared by the unit tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


@pytest.fixture
def accepted() -> Iterator[socket.socket]:
    """The server side of a loopback TCP connection: a real socket whose options the kernel reports."""
    with socket.create_server(("127.0.0.1", 0)) as listener, \
            socket.create_connection(listener.getsockname()) as client:
        server, _ = listener.accept()
        with server:
            yield server
        client.close()

"""A cluster store that resets the connection: what the user is told, with TLS and without.

A plain etcd answers a TLS hello with a close, a "wrong version" record or a reset, as its timing
happens (the integration test against a real etcd sees any of them). The reset is produced here on
purpose by a listener that aborts every connection it accepts, because a real etcd does not do it
reliably: with etcds:// it must read as "does not serve TLS", with etcd:// it must not be blamed on TLS.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from powerstrip.adapters.net.etcd_client import Etcd, StoreTLS
from powerstrip.adapters.net.model import StoreUnavailable


@pytest.fixture
def resetting() -> Iterator[int]:
    """A loopback port whose listener reads what the client sends, then resets the connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(4096)
                except OSError:
                    pass
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() waiting in the thread
        listener.close()
        thread.join(timeout=10)


def test_a_reset_in_the_tls_handshake_says_the_store_may_not_serve_tls(resetting: int) -> None:
    store = Etcd((("127.0.0.1", resetting),), timeout=5, tls=StoreTLS())
    with pytest.raises(StoreUnavailable) as refused:
        store.range("/probe")
    assert "TLS: the cluster store closed the connection in the handshake" in refused.value.message
    assert "does not serve TLS (then use etcd://)" in refused.value.message


def test_a_reset_without_tls_is_not_blamed_on_tls(resetting: int) -> None:
    store = Etcd((("127.0.0.1", resetting),), timeout=5)
    with pytest.raises(StoreUnavailable) as refused:
        store.range("/probe")
    # the reset reaches the client as one, or (when it was still sending) as an end without an answer
    message = refused.value.message
    assert message.endswith(("unreachable: connection reset by peer",
                             "unreachable: the server closed the connection without an answer (if it serves TLS, "
                             "use etcds://)")), message
    assert ": TLS:" not in message

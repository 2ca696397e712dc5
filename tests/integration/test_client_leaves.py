"""A client that gives up on a long poll or an idle stream frees its daemon connection at once."""

from __future__ import annotations

import os
import socket
import time

import pytest

pytestmark = pytest.mark.docker


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settle(pid: int, expected: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while open_fds(pid) > expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return open_fds(pid)


@pytest.mark.parametrize("request_line", [
    b"GET /v1.41/events HTTP/1.1",                                   # endless stream, nothing to report
    b"GET /v1.41/events?until=9999999999 HTTP/1.1",
])
def test_leaving_client_closes_its_daemon_connection(gateway, request_line):
    pid = gateway.proc.pid
    baseline = settle(pid, 0, timeout=0.5)
    clients = []
    for _ in range(5):
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(10)
        sock.connect(gateway.socket_path)
        sock.sendall(request_line + b"\r\nHost: docker\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        clients.append(sock)
    assert open_fds(pid) >= baseline + 10  # each stream: a client and a daemon connection
    for sock in clients:
        sock.close()
    assert settle(pid, baseline) == baseline
    assert gateway.running()

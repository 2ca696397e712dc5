"""The relay's edge cases (issue 11): each one hung, leaked or mis-answered before; each is tried here.

Against the real daemon where it can produce the case; a fake daemon (a unix socket server in the
test) only for what dockerd never sends — a malformed response head or chunk, a body that stalls —
and those tests say so.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from harness.cli import run_docker
from harness.gateway import Gateway
from harness.image import IMAGE
from harness.ops import config, wait_for_log

pytestmark = pytest.mark.docker

CREATE = "POST /*/containers/create"


def connect(path: str, timeout: float = 10.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(timeout)
    sock.connect(path)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the gateway closes (bounded by the socket's timeout)."""
    parts = []
    while chunk := sock.recv(65536):
        parts.append(chunk)
    return b"".join(parts)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settle(pid: int, expected: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while open_fds(pid) > expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return open_fds(pid)


# ---- against the real daemon --------------------------------------------------------------------

def test_a_malformed_chunk_in_a_relayed_body_is_a_400_and_frees_the_daemon_connection(gateway):
    pid = gateway.proc.pid
    baseline = settle(gateway.proc.pid, 0, timeout=0.5)
    with connect(gateway.socket_path) as sock:
        sock.sendall(b"POST /v1.41/build HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc")
        time.sleep(0.2)
        sock.sendall(b"de\r\nnot-a-size\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert "chunk size" in json.loads(answer.split(b"\r\n\r\n", 1)[1])["message"]
    assert settle(pid, baseline) == baseline  # no daemon connection left behind
    assert gateway.running()


def test_a_client_that_closes_inside_a_relayed_body_frees_the_daemon_connection(gateway):
    pid = gateway.proc.pid
    baseline = settle(pid, 0, timeout=0.5)
    sock = connect(gateway.socket_path)
    sock.sendall(b"POST /v1.41/build HTTP/1.1\r\nHost: d\r\nContent-Length: 100000\r\n\r\nabc")
    time.sleep(0.3)
    sock.close()
    assert settle(pid, baseline) == baseline
    assert gateway.running()


def test_a_bare_lf_head_is_answered_at_once_as_dockerd_answers_it(gateway):
    with connect(gateway.socket_path, timeout=5) as sock:
        sock.sendall(b"GET /_ping HTTP/1.1\nHost: d\n\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"OK")


def test_a_chunked_http10_request_is_refused_since_dockerd_would_read_its_body_as_a_request(gateway, dockerd):
    """Go ignores Transfer-Encoding in an HTTP/1.0 request (golang/go#12785): direct, dockerd answers the ping and
    then reads the chunked body as a second request (its 400). Relayed, that body would be a request no hook
    judged; the gateway refuses the request instead, and the daemon sees nothing of it."""
    request = (b"GET /_ping HTTP/1.0\r\nHost: d\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n0\r\n\r\n")
    with connect(dockerd.socket_path, timeout=5) as sock:
        sock.sendall(request)
        direct = read_all(sock)
    assert re.findall(rb"HTTP/1\.[01] (\d{3})", direct) == [b"200", b"400"], direct
    with connect(gateway.socket_path, timeout=5) as sock:
        sock.sendall(request)
        via = read_all(sock)
    assert re.findall(rb"HTTP/1\.[01] (\d{3})", via) == [b"400"], via
    assert b"Transfer-Encoding in an HTTP/1.0 request" in via


def test_pipelined_requests_followed_by_a_half_close_are_all_answered(gateway):
    with connect(gateway.socket_path) as sock:
        sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n" * 2 + b"GET /v1.41/version HTTP/1.1\r\nHost: d\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        answer = read_all(sock)
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert b'"ApiVersion"' in answer


def test_an_unfinished_head_gets_408_after_the_head_timeout(make_gateway):
    gw = make_gateway(extra_args=["--head-timeout", "1"])
    with connect(gw.socket_path) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /_ping HTTP/1.1\r\nHost:")
        answer = read_all(sock)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert 0.9 < waited < 5


def test_listeners_have_dockerds_backlog_of_4096(make_gateway):
    gw = make_gateway(tcp=True)
    out = subprocess.run(["ss", "-Hltn", f"sport = :{gw.tcp_port}"], capture_output=True, text=True, timeout=10).stdout
    assert out.split()[2] == "4096", out  # Send-Q of a listening socket is its backlog
    out = subprocess.run(["ss", "-Hlx", "src", gw.socket_path], capture_output=True, text=True, timeout=10).stdout
    assert out.split()[3] == "4096", out


def test_a_client_leaving_a_chunked_stream_is_no_error_in_the_log(gateway):
    for _ in range(3):
        with connect(gateway.socket_path) as sock:
            sock.sendall(b"GET /v1.41/events HTTP/1.1\r\nHost: d\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset
    run_docker(gateway.url, "pull", "no-such-image-anywhere:1")  # makes events the gateway writes to dead clients
    time.sleep(0.5)
    assert "ERROR" not in gateway.log_text()
    assert gateway.running()


def test_100_continue_with_a_length_over_the_limit_is_refused_413_without_inviting_the_body(make_gateway, fresh):
    gw = make_gateway(config({CREATE: {"pre": ["pass"]}}, {"pass": fresh.url("pass")}),
                      extra_args=["--max-body-size", "1KiB"])
    with connect(gw.socket_path) as sock:
        sock.sendall(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nContent-Length: 4096\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"100 Continue" not in answer
    assert fresh.calls_to("pass") == []


def test_a_hooked_body_that_stops_arriving_gets_408(make_gateway, fresh):
    gw = make_gateway(config({CREATE: {"pre": ["pass"]}}, {"pass": fresh.url("pass")}),
                      extra_args=["--body-timeout", "1"])
    with connect(gw.socket_path) as sock:
        sock.sendall(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 50\r\n\r\n{")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_the_audit_keeps_the_hook_decisions_when_the_daemon_is_unreachable_after_the_pre_hooks(
        fresh, tmp_path):
    audit = tmp_path / "audit.jsonl"
    cfg = tmp_path / "adapters.yml"
    cfg.write_text(config({CREATE: {"pre": ["pass"]}}, {"pass": fresh.url("pass")}))
    with Gateway(f"unix://{tmp_path}/no-daemon.sock", config=cfg, wait_ping=False,
                 extra_args=["--audit-log", str(audit)]) as gw:
        with connect(gw.socket_path) as sock:
            body = b'{"Image": "ps-busybox"}'
            sock.sendall(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 502 ")
        wait_for_log(gw, "-> 502")
    entry = json.loads(audit.read_text().splitlines()[-1])
    assert (entry["status"], entry["fault"]) == (502, "daemon")
    assert [hook["adapter"] for hook in entry["hooks"]] == ["pass"]


def test_attach_over_tls_keeps_the_output_after_the_clients_half_close(make_gateway, tmp_path):
    """Docker's TLS client ends stdin with close_notify; the output must still come back (was a known limit)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    port = _free_port()
    make_gateway(extra_args=["--listen", f"tcp://127.0.0.1:{port}", "--tlscert", str(cert), "--tlskey", str(key)])
    tls = ("--tlsverify", "--tlscacert", str(cert))
    result = run_docker(f"tcp://127.0.0.1:{port}", *tls, "run", "-i", "--rm", "ps-busybox", "sh", "-c",
                        "cat; echo after-stdin", input="over tls\n", timeout=20)
    assert result.rc == 0, result.err
    assert result.out == "over tls\nafter-stdin\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- against a fake daemon: what dockerd never sends --------------------------------------------

class FakeDaemon:
    """A unix socket server that answers every request with ``answer`` (then keeps the connection open
    until the gateway closes it). dockerd never sends a malformed head or chunk, nor stalls a body:
    only a fake can, which is why these tests use one."""

    def __init__(self, path: Path, answer: bytes) -> None:
        self.path = str(path)
        self.answer = answer
        self.closed_by_gateway = threading.Event()
        self._server = socket.socket(socket.AF_UNIX)
        self._server.bind(self.path)
        self._server.listen(16)
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    @staticmethod
    def _request_arrived(conn: socket.socket) -> bool:
        """Read until a request head has arrived (False if the gateway closed first)."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        return True

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        with conn:
            if not self._request_arrived(conn):
                return
            conn.sendall(self.answer)
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass
            self.closed_by_gateway.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()


@pytest.fixture
def fake_daemon(tmp_path) -> Iterator[callable]:
    made: list[FakeDaemon] = []

    def make(answer: bytes) -> FakeDaemon:
        made.append(FakeDaemon(tmp_path / f"fake{len(made)}.sock", answer))
        return made[-1]

    yield make
    for fake in made:
        fake.close()


def test_a_malformed_response_head_from_the_daemon_is_a_502_not_a_400(fake_daemon):
    fake = fake_daemon(b"HTTP/1.1 2x0 Nonsense\r\n\r\n")
    with Gateway(f"unix://{fake.path}", wait_ping=False) as gw:
        with connect(gw.socket_path) as sock:
            sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
            answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 502 ")
        assert "daemon sent a malformed response" in json.loads(answer.split(b"\r\n\r\n", 1)[1])["message"]
        assert fake.closed_by_gateway.wait(5)


def test_a_malformed_chunk_from_the_daemon_cuts_the_response_without_an_error_inside_it(fake_daemon):
    fake = fake_daemon(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nnot-a-size\r\n")
    with Gateway(f"unix://{fake.path}", wait_ping=False) as gw:
        with connect(gw.socket_path) as sock:
            sock.sendall(b"GET /v1.41/containers/x/logs HTTP/1.1\r\nHost: d\r\n\r\n")
            answer = read_all(sock)
        assert answer == b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        assert fake.closed_by_gateway.wait(5)
        assert "ERROR" not in gw.log_text()


def test_a_stalled_post_hooked_response_is_dropped_when_the_client_leaves(fake_daemon, fresh, tmp_path):
    fake = fake_daemon(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\"")
    cfg = tmp_path / "adapters.yml"
    cfg.write_text(config({"GET /*/containers/json": {"post": ["pass"]}}, {"pass": fresh.url("pass")}))
    with Gateway(f"unix://{fake.path}", config=cfg, wait_ping=False) as gw:
        sock = connect(gw.socket_path)
        sock.sendall(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: d\r\n\r\n")
        time.sleep(0.5)
        sock.close()
        assert fake.closed_by_gateway.wait(5), "the gateway kept the daemon connection of a client that left"
        assert gw.running()
        assert not re.search(r"ERROR", gw.log_text())


class ClosingFakeDaemon(FakeDaemon):
    """Answers the first request of each connection, then closes it when the next one arrives, unanswered:
    the race of a daemon that closes a kept-alive connection (it restarts, or drops idle ones) just as a
    request goes out. dockerd does this only by chance of timing, so a fake plays it on every connection."""

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        with conn:
            if self._request_arrived(conn):
                conn.sendall(self.answer)
                conn.recv(65536)  # the next request: closed without an answer


def test_a_safe_request_on_a_connection_the_daemon_closed_unanswered_is_sent_again(tmp_path):
    fake = ClosingFakeDaemon(tmp_path / "closing.sock", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
    try:
        with Gateway(f"unix://{fake.path}", wait_ping=False) as gw:
            with connect(gw.socket_path) as sock:
                for _ in range(3):  # each one after the first finds its daemon connection closed
                    sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
                    assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
                # a request that is not safe to repeat is never sent twice: the daemon's failure, a 502
                sock.sendall(b"POST /v1.41/containers/x/start HTTP/1.1\r\nHost: d\r\n\r\n")
                answer = read_all(sock)
            assert answer.startswith(b"HTTP/1.1 502 ")
            assert "without answering" in json.loads(answer.split(b"\r\n\r\n", 1)[1])["message"]
    finally:
        fake.close()


def test_bulk_bodies_over_tcp_arrive_whole_and_the_connection_goes_on(make_gateway, dockerd, uniq):
    """A large log and an export stream coalesced into full segments (TCP_NODELAY off while they
    stream), the same as direct byte for byte; the kept-alive connection then answers the next requests."""
    gw = make_gateway(tcp=True)
    direct = docker.DockerClient(base_url=dockerd.url, timeout=60)
    via = docker.DockerClient(base_url=gw.tcp_url, timeout=60)
    name = f"bulk-{uniq}"
    try:
        container = direct.containers.run(IMAGE, ["sh", "-c", "seq 1 300000; seq 1 5 >&2"], name=name, detach=True)
        assert container.wait(timeout=60)["StatusCode"] == 0
        logs = direct.api.logs(name)
        assert len(logs) > 1_900_000
        for _ in range(2):  # the second on the connection the first left coalescing
            assert via.api.logs(name) == logs
            assert via.ping() is True
        assert b"".join(via.api.export(name)) == b"".join(direct.api.export(name))
        assert via.api.inspect_container(name)["Name"] == f"/{name}"
    finally:
        direct.api.remove_container(name, force=True)
        direct.close()
        via.close()

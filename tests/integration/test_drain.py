"""Graceful stop on SIGTERM: stop accepting, let requests in progress finish, cut streams at the bound, exit 0."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import threading
import time

import docker
import pytest

from harness import rawhttp
from harness.cli import Streaming, run_docker
from harness.gateway import free_tcp_port
from harness.ops import CREATE, config, http_get

pytestmark = pytest.mark.docker


def kept_alive_connection(socket_path: str) -> rawhttp.UnixHTTPConnection:
    """A connection that answered one request and now idles, kept alive."""
    connection = rawhttp.UnixHTTPConnection(socket_path, timeout=5)
    connection.request("GET", "/_ping")
    response = connection.getresponse()
    assert response.status == 200 and response.read() == b"OK"
    return connection


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_sigterm_finishes_the_request_in_flight_refuses_new_ones_cuts_the_stream_and_exits_0(
        make_gateway, fresh, dockerd, uniq):
    drain = 6.0
    port = free_tcp_port()
    gw = make_gateway(config({CREATE: {"pre": ["slow"]}}, {"slow": fresh.url("slow", seconds=3)}),
                      extra_args=["--drain-timeout", str(drain), "--metrics-listen", f"tcp://127.0.0.1:{port}"])
    name = f"dr-{uniq}"
    socket_path = gw.socket_path
    stream_end: dict[str, object] = {}
    events_client = docker.DockerClient(base_url=gw.url, timeout=60)
    events = events_client.events(decode=True)

    def follow_events() -> None:
        try:
            for _ in events:
                pass
            stream_end["how"] = "ended"
        except Exception as exc:  # a cut chunked stream shows up as a protocol error in the client
            stream_end["how"] = repr(exc)
        stream_end["at"] = time.monotonic()

    results = {}
    follower = threading.Thread(target=follow_events)
    creator = threading.Thread(target=lambda: results.setdefault(
        "create", run_docker(gw.url, "create", "--name", name, "ps-busybox", "true")))
    idle = kept_alive_connection(socket_path)
    try:
        follower.start()
        creator.start()
        deadline = time.monotonic() + 15
        while not fresh.calls_to("slow") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fresh.calls_to("slow"), "the slow adapter was never called"

        sent = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        assert closed_by_peer(idle.sock, 2.0), "the idle kept-alive connection was not closed at once"
        with pytest.raises(OSError):  # the socket file is gone: no new connections
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(socket_path)
                time.sleep(0.05)
        status, body = http_get(f"http://127.0.0.1:{port}/health")
        assert (status, json.loads(body)["status"]) == (503, "draining")

        creator.join(15)
        assert results["create"].rc == 0, results["create"].err
        assert time.monotonic() - sent < drain, "the in-flight request was not let finish before the bound"
        assert gw.proc.wait(drain + 10) == 0
        follower.join(10)
        assert not follower.is_alive(), "the events stream was not closed"
        assert drain - 1.0 <= stream_end["at"] - sent <= drain + 3.0, stream_end
    finally:
        idle.close()
        events.close()
        events_client.close()
        follower.join(10)
        creator.join(30)
        docker.DockerClient(base_url=dockerd.url).containers.get(name).remove(force=True)
    log = gw.log_text()
    assert "draining: waiting up to 6s for 2 request(s) in progress" in log
    assert "drain timeout: closing 1 connection(s) still busy" in log
    assert "stopped" in log and "Traceback" not in log


def test_sigterm_with_only_idle_connections_exits_at_once(make_gateway):
    gw = make_gateway(extra_args=["--drain-timeout", "10"])
    idle = [kept_alive_connection(gw.socket_path) for _ in range(3)]
    try:
        sent = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        assert gw.proc.wait(10) == 0
        assert time.monotonic() - sent < 3.0, "idle connections held up the stop"
        assert all(closed_by_peer(connection.sock, 1.0) for connection in idle)
    finally:
        for connection in idle:
            connection.close()


def test_sigterm_cuts_logs_follow_and_attach_streams_at_the_bound(make_gateway, dockerd, uniq):
    drain = 3.0
    gw = make_gateway(extra_args=["--drain-timeout", str(drain)])
    direct = docker.DockerClient(base_url=dockerd.url)
    container = direct.containers.run("ps-busybox", ["sh", "-c", "while true; do echo tick; sleep 0.2; done"],
                                      name=f"dr-{uniq}", detach=True)
    try:
        with Streaming(gw.url, "logs", "-f", container.id) as logs, \
                Streaming(gw.url, "attach", "--no-stdin", container.id) as attach:
            logs.wait_lines(2, 20, "tick")
            attach.wait_lines(2, 20, "tick")
            sent = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)
            assert gw.proc.wait(drain + 10) == 0
            stopped = time.monotonic() - sent
            for client in (logs, attach):
                client.proc.wait(5)  # the gateway closed their connections: the CLIs end
            assert drain - 0.5 <= stopped <= drain + 3, stopped
        container.reload()
        assert container.status == "running"  # only the clients were cut
    finally:
        container.remove(force=True)
        direct.close()
    log = gw.log_text()
    assert "drain timeout: closing" in log  # logs -f, attach (and the CLI's wait beside it)
    assert "Traceback" not in log


def test_a_second_sigterm_cuts_the_drain_short(make_gateway):
    gw = make_gateway(extra_args=["--drain-timeout", "60"])
    client = docker.DockerClient(base_url=gw.url, version="1.41", timeout=60)
    events = client.events()
    try:
        def follow() -> None:
            with contextlib.suppress(Exception):  # the cut shows up as a protocol error in the client
                for _ in events:
                    pass

        follower = threading.Thread(target=follow)
        follower.start()
        time.sleep(0.5)  # margin: events() returned once the stream's head came through the gateway
        gw.proc.send_signal(signal.SIGTERM)
        with pytest.raises(subprocess.TimeoutExpired):
            gw.proc.wait(1.5)  # draining: the stream is still being relayed
        sent = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        assert gw.proc.wait(10) == 0
        assert time.monotonic() - sent < 3.0
        follower.join(10)
        assert not follower.is_alive()
    finally:
        events.close()
        client.close()
    assert "drain cut short: closing 1 connection(s)" in gw.log_text()

"""The things measured, each reachable at ``http://127.0.0.1:PORT`` in the daemon's network namespace.

All candidates are served over TCP on the same loopback, so one load generator (wrk) drives them all:
the daemon through an extra ``-H tcp://127.0.0.1:PORT`` listener, HAProxy and powerstrip on a TCP
listener each, forwarding to the daemon's unix socket (as they would in production).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.endpoints import HOOKED_ENDPOINTS
from harness.gateway import Gateway, free_tcp_port
from harness.util import HarnessError, remove_tree, terminate, wait_until

BENCH_DIR = Path(__file__).resolve().parent
NOOP_ADAPTER = "bench.noop:adapter"


def tcp_ping(port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return data.startswith(b"HTTP/1.1 200") and data.endswith(b"OK")
    except OSError:
        return False


@dataclass
class Candidate:
    """One thing under test. ``pid`` is the process whose memory the stream workloads report."""

    name: str
    label: str
    port: int
    pid: int | None = None
    hooked: bool = False
    _stop: list[Callable[[], object]] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        while self._stop:
            self._stop.pop()()


def direct(port: int, dockerd_pid: int) -> Candidate:
    return Candidate("direct", "dockerd (direct)", port, dockerd_pid)


HAPROXY_DEFAULTS = """\
global
    maxconn 8192
defaults
    mode http
    timeout connect 5s
    timeout client 10m
    timeout server 10m
    timeout tunnel 1h
"""
HAPROXY_CFG = HAPROXY_DEFAULTS + """\
frontend docker
    bind 127.0.0.1:{port}
    default_backend dockerd
backend dockerd
    server dockerd {socket}
"""


def haproxy(docker_socket: str) -> Candidate:
    """HAProxy as a plain HTTP pass-through to the daemon socket (the engine of the usual socket
    proxies, without their ACLs or logging: HAProxy at its fastest). Keep-alive on both sides."""
    port = free_tcp_port()
    workdir = tempfile.mkdtemp(prefix="psb-haproxy-", dir="/tmp")
    cfg = Path(workdir, "haproxy.cfg")
    cfg.write_text(HAPROXY_CFG.format(port=port, socket=docker_socket))
    with open(Path(workdir, "haproxy.log"), "wb") as log:
        proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, start_new_session=True)
    cand = Candidate("haproxy", "HAProxy pass-through", port, proc.pid)
    cand._stop += [lambda: remove_tree(workdir), lambda: terminate(proc)]
    try:
        wait_until(lambda: _alive(proc, workdir) and tcp_ping(port), 20, 0.05, "HAProxy /_ping")
    except BaseException:
        cand.stop()
        raise
    return cand


def floor(docker_socket: str) -> Candidate:
    """``bench.floor_relay``: uvloop Protocols copying bytes between a client and the daemon socket, nothing
    else — the least any Python relay costs here, so powerstrip's own work is its difference to this line."""
    port = free_tcp_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.floor_relay", str(port), docker_socket],
                            cwd=str(BENCH_DIR.parent), stdin=subprocess.DEVNULL, start_new_session=True)
    cand = Candidate("floor", "uvloop byte relay (the floor of a Python relay)", port, proc.pid)
    cand._stop.append(lambda: terminate(proc))
    try:
        wait_until(lambda: proc.poll() is None and tcp_ping(port), 10, 0.05, "the floor relay's /_ping")
    except BaseException:
        cand.stop()
        raise
    return cand


def _alive(proc: subprocess.Popen, workdir: str) -> bool:
    if proc.poll() is not None:
        raise HarnessError(f"haproxy exited: {Path(workdir, 'haproxy.log').read_text(errors='replace')[-2000:]}")
    return True


def sdk_available() -> bool:
    try:
        import powerstrip.sdk  # noqa: F401
    except ImportError:
        return False
    return True


def adapter_service() -> tuple[int, Callable[[], None]]:
    """``powerstrip adapter run bench.noop:adapter`` on a TCP port; answers protocol v1 and v2."""
    port = free_tcp_port()
    workdir = tempfile.mkdtemp(prefix="psb-adapter-", dir="/tmp")
    env = dict(os.environ, PYTHONPATH=str(BENCH_DIR.parent))
    with open(Path(workdir, "adapter.log"), "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "powerstrip", "adapter", "run", NOOP_ADAPTER,
                                 "--listen", f"tcp://127.0.0.1:{port}", "--log-level", "warning"],
                                cwd=str(BENCH_DIR.parent), env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, start_new_session=True)

    def stop() -> None:
        terminate(proc)
        remove_tree(workdir)

    def pong() -> bool:
        if proc.poll() is not None:
            raise HarnessError(f"adapter exited: {Path(workdir, 'adapter.log').read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /v1/ping HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                return b"pong" in s.recv(4096)
        except OSError:
            return False

    try:
        wait_until(pong, 30, 0.1, "the noop adapter's /v1/ping")
    except BaseException:
        stop()
        raise
    return port, stop


def hook_config(adapter: str) -> str:
    """adapters.yml: one pre-hook (the noop adapter) on every endpoint the suite measures."""
    endpoints = "".join(f'  "{pattern}":\n    pre: [noop]\n' for pattern in HOOKED_ENDPOINTS)
    return f"endpoints:\n{endpoints}adapters:\n  noop: {adapter}\n"


_POLICY_RESOURCES = ("containers", "images", "networks", "volumes", "secrets", "configs", "services", "nodes",
                     "plugins", "tasks", "exec", "swarm", "distribution", "session", "build")
_POLICY_ACTIONS = ("create", "update", "remove", "prune", "inspect", "rename", "kill", "restart", "push", "tag")


def policy_config(adapter: str) -> str:
    """adapters.yml as an access policy looks: many patterns (GET ones too), none matching a measured request.

    Measures what route matching costs a request that no pattern takes.
    """
    patterns = [f"{method} /*/{resource}/*/{action}" for resource in _POLICY_RESOURCES for action in _POLICY_ACTIONS
                for method in ("GET", "POST")]
    patterns += [f"DELETE /*/{resource}/*" for resource in _POLICY_RESOURCES]
    endpoints = "".join(f'  "{pattern}":\n    pre: [noop]\n' for pattern in patterns)
    return f"endpoints:\n{endpoints}adapters:\n  noop: {adapter}\n"


def powerstrip(docker_url: str, name: str, label: str, adapter: str | None = None,
               log_level: str = "info", config_text: str | None = None) -> Candidate:
    """A powerstrip gateway with a TCP listener; with ``adapter``, one pre-hook on the measured endpoints
    (or ``config_text`` as its config, a candidate whose hooks the measured requests do not match)."""
    config = None
    workdir = None
    if adapter is not None or config_text is not None:
        workdir = tempfile.mkdtemp(prefix="psb-cfg-", dir="/tmp")
        config = Path(workdir, "adapters.yml")
        config.write_text(config_text if config_text is not None else hook_config(adapter))
    gw = Gateway(docker_url, config=config, tcp=True, log_level=log_level)
    try:
        gw.start()
    except BaseException:
        if workdir:
            remove_tree(workdir)
        raise
    cand = Candidate(name, label, gw.tcp_port, gw.proc.pid, hooked=adapter is not None and config_text is None)
    if workdir:
        cand._stop.append(lambda: remove_tree(workdir))
    cand._stop.append(gw.stop)
    wait_until(lambda: tcp_ping(gw.tcp_port), 10, 0.05, "powerstrip /_ping over TCP")
    return cand


def settle(seconds: float = 0.5) -> None:
    """Let a fresh process finish its start-up work before it is measured."""
    time.sleep(seconds)


def wait_for_tcp(port: int, timeout: float = 30.0) -> None:
    wait_until(lambda: tcp_ping(port), timeout, 0.1, f"/_ping on 127.0.0.1:{port}")

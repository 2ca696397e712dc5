"""A real etcd server for tests: its own data dir in /tmp, a chosen listen address, restartable.

Debian's etcd-server package provides ``/usr/bin/etcd`` (installed when missing). ``restart()``
keeps the data dir, as a real restart would; ``stop()`` removes everything.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from .util import HarnessError, apt_install, remove_tree, tail, terminate, wait_until


def ensure_etcd_installed() -> str:
    path = shutil.which("etcd")
    if path is None:
        apt_install(["etcd-server"])
        path = shutil.which("etcd")
        if path is None:
            raise HarnessError("etcd still missing after apt-get install etcd-server")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EtcdServer:
    """One single-member etcd cluster listening on ``host`` (client port ``port``)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, start_timeout: float = 30.0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.peer_port = free_port(host)
        self.start_timeout = start_timeout
        self.dir: str | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"etcd://{self.endpoint}"

    @property
    def log_path(self) -> str:
        assert self.dir
        return str(Path(self.dir, "etcd.log"))

    def __enter__(self) -> "EtcdServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "EtcdServer":
        binary = ensure_etcd_installed()
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="pse-", dir="/tmp")
        client, peer = f"http://{self.host}:{self.port}", f"http://{self.host}:{self.peer_port}"
        argv = [binary, "--name", "ps-test", "--data-dir", f"{self.dir}/data",
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"ps-test={peer}", "--logger", "zap", "--log-outputs", "stderr"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        try:
            wait_until(self._healthy, self.start_timeout, 0.1, f"etcd on {self.endpoint}")
        except TimeoutError as exc:
            self.stop()
            raise HarnessError(f"{exc}; etcd log tail:\n{tail(self.log_path) if self.dir else ''}") from None
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise HarnessError(f"etcd exited with {self.proc.returncode}:\n{tail(self.log_path)}")
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: etcd\r\nConnection: close\r\n\r\n")
                return b'"health":"true"' in s.recv(4096)
        except OSError:
            return False

    def kill(self) -> None:
        """Stop the server but keep its data (an outage)."""
        if self.proc is not None:
            terminate(self.proc, term_timeout=10.0)
            self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        self.kill()
        if self.dir:
            remove_tree(self.dir)
            self.dir = None

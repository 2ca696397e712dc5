"""A real etcd server for tests: its own data dir in /tmp, a chosen listen address, restartable.

Debian's etcd-server package provides ``/usr/bin/etcd`` (installed when missing). ``restart()``
keeps the data dir, as a real restart would; ``stop()`` removes everything.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

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


@dataclass(frozen=True, slots=True)
class ServerTLS:
    """TLS on etcd's client port: its certificate and key, and the CA whose client certificates it requires."""

    cert: str
    key: str
    client_ca: str
    server_ca: str  # what signed ``cert``
    health_cert: tuple[str, str]  # a client certificate and key the health check uses


class EtcdServer:
    """One single-member etcd cluster listening on ``host`` (client port ``port``), optionally with TLS
    (client certificates required) and extra flags (e.g. ``--auth-token-ttl``)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, start_timeout: float = 30.0,
                 tls: ServerTLS | None = None, extra_args: tuple[str, ...] = ()) -> None:
        self.host = host
        self.tls = tls
        self.extra_args = extra_args
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
        return f"{'etcds' if self.tls else 'etcd'}://{self.endpoint}"

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
        scheme = "https" if self.tls else "http"
        client, peer = f"{scheme}://{self.host}:{self.port}", f"http://{self.host}:{self.peer_port}"
        argv = [binary, "--name", "ps-test", "--data-dir", f"{self.dir}/data",
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"ps-test={peer}", "--logger", "zap", "--log-outputs", "stderr"]
        if self.tls:
            argv += ["--cert-file", self.tls.cert, "--key-file", self.tls.key, "--client-cert-auth",
                     "--trusted-ca-file", self.tls.client_ca]
        argv += self.extra_args
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
                if self.tls:
                    context = ssl.create_default_context(cafile=self.tls.server_ca)
                    context.load_cert_chain(*self.tls.health_cert)
                    s = context.wrap_socket(s, server_hostname=self.host)
                s.sendall(b"GET /health HTTP/1.1\r\nHost: etcd\r\nConnection: close\r\n\r\n")
                return b'"health":"true"' in s.recv(4096)
        except (OSError, ssl.SSLError):
            return False

    def enable_auth(self, admin: "requests.Session", users: dict[str, str], prefix: str) -> None:
        """Turn etcd's authentication on: root, and ``users`` (name → password) with read/write on
        ``prefix`` (a user named ``nobody`` gets no role at all). ``admin`` carries the client TLS."""
        def b64(text: str) -> str:
            return base64.b64encode(text.encode()).decode()

        base = f"{'https' if self.tls else 'http'}://{self.endpoint}/v3/auth"
        steps = [("/role/add", {"name": "root"}), ("/user/add", {"name": "root", "password": secrets.token_hex(8)}),
                 ("/user/grant", {"user": "root", "role": "root"}), ("/role/add", {"name": "prefix-rw"}),
                 ("/role/grant", {"name": "prefix-rw", "perm": {"permType": "READWRITE", "key": b64(prefix),
                                                               "range_end": b64(prefix[:-1] + chr(ord(prefix[-1]) + 1))}})]
        for name, password in users.items():
            steps.append(("/user/add", {"name": name, "password": password}))
            if name != "nobody":
                steps.append(("/user/grant", {"user": name, "role": "prefix-rw"}))
        for path, body in [*steps, ("/enable", {})]:
            answer = admin.post(base + path, json=body, timeout=10)
            if answer.status_code != 200:
                raise HarnessError(f"etcd {path}: {answer.status_code} {answer.text}")

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

"""A TLS listener, used by the docker CLI with --tlsverify like a TLS dockerd."""

from __future__ import annotations

import subprocess

import pytest

from harness.cli import run_docker
from harness.gateway import free_tcp_port

pytestmark = pytest.mark.docker


@pytest.fixture
def certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_docker_cli_over_tls(make_gateway, certificate):
    cert, key = certificate
    port = free_tcp_port()
    gw = make_gateway(extra_args=["--listen", f"tcp://127.0.0.1:{port}", "--tlscert", str(cert), "--tlskey", str(key)])
    host = f"tcp://127.0.0.1:{port}"
    tls = ("--tlsverify", "--tlscacert", str(cert))
    created = run_docker(host, *tls, "run", "-d", "ps-busybox", "sh", "-c", "echo over-tls; exit 3")
    assert created.rc == 0, created.err
    container = created.out.strip()
    try:
        assert run_docker(host, *tls, "wait", container).out == "3\n"
        assert run_docker(host, *tls, "logs", container).out == "over-tls\n"
    finally:
        run_docker(host, *tls, "rm", "-f", container)
    plain = run_docker(host, "version", "--format", "{{.Server.Version}}", timeout=20)
    assert plain.rc != 0
    assert gw.running()

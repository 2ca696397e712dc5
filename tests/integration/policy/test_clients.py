"""Per-client profiles with real clients: the docker CLI run as other users (SO_PEERCRED), TCP clients from
different source addresses, TLS clients with different certificates, and the listener a client came in on."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess

import pytest

from harness import rawhttp
from harness.cli import run_docker
from harness.gateway import free_tcp_port

pytestmark = pytest.mark.docker

NOBODY = 65534


def _open_to_everyone(gw) -> None:
    """The harness makes the gateway's dir 0700 and its socket 0660: let other users reach the socket."""
    os.chmod(gw.dir, 0o755)
    os.chmod(gw.socket_path, 0o666)


def _as_user(uid: int, gw, *args: str, config_dir: str):
    return run_docker(gw.url, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "docker", *args,
                      docker="setpriv", env={"DOCKER_CONFIG": config_dir, "HOME": config_dir})


def test_unix_peer_uid_picks_the_profile(policy_gateway, tmp_path, uniq, daemon):
    gw = policy_gateway(f"""\
        profiles:
          - name: viewer
            match: {{uid: {NOBODY}}}
            presets: [traefik]
          - name: admin
            match: {{uid: 0, gid: 0}}
            rules:
              - allow: "* /**"
        """)
    _open_to_everyone(gw)
    config_dir = tmp_path / "cli"
    config_dir.mkdir()
    os.chmod(config_dir, 0o777)
    listed = _as_user(NOBODY, gw, "ps", "-a", config_dir=str(config_dir))
    assert listed.rc == 0, listed.err
    ran = _as_user(NOBODY, gw, "create", "--name", f"pol-nobody-{uniq}", "ps-busybox", "true", config_dir=str(config_dir))
    assert ran.rc != 0 and "policy (profile 'viewer'): no rule of profile 'viewer' allows POST /containers/create" in ran.err
    stranger = _as_user(1000, gw, "version", "--format", "{{.Server.Version}}", config_dir=str(config_dir))
    assert stranger.rc != 0 and "no policy profile matches this client (uid 1000 gid 1000)" in stranger.err
    made = run_docker(gw.url, "create", "--name", f"pol-root-{uniq}", "ps-busybox", "true")
    try:
        assert made.rc == 0, made.err
    finally:
        run_docker(gw.url, "rm", "-f", f"pol-root-{uniq}")


def _tcp_request(port: int, source: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data.startswith((b"{", b"[")) else {}
    finally:
        connection.close()


def test_tcp_source_cidr_and_listener_pick_the_profile(policy_gateway):
    port = free_tcp_port()
    gw = policy_gateway(f"""\
        profiles:
          - name: readers
            match: {{address: 127.0.0.2/32}}
            rules:
              - allow: "GET /containers/json"
          - name: loopback
            match: {{address: ["127.0.0.0/8", "::1/128"], listener: "tcp://127.0.0.1:{port}"}}
            rules:
              - allow: "* /**"
          - name: local-socket
            match: {{listener: "unix://./gw.sock"}}
            rules:
              - allow: "GET,HEAD /_ping"
        """, extra_args=["--listen", f"tcp://127.0.0.1:{port}"])
    assert _tcp_request(port, "127.0.0.2", "GET", "/v1.41/containers/json")[0] == 200
    status, body = _tcp_request(port, "127.0.0.2", "POST", "/v1.41/containers/create", {"Image": "pol-no-such-image"})
    assert status == 403 and "profile 'readers'" in body["message"]
    # the other profile lets the same request reach the daemon, which answers for the missing image itself
    status, body = _tcp_request(port, "127.0.0.1", "POST", "/v1.41/containers/create", {"Image": "pol-no-such-image"})
    assert status == 404, body
    # the unix listener (the harness's gw.sock, named relative to the gateway's directory) has its own profile
    assert rawhttp.request(gw.socket_path, "GET", "/_ping").status == 200
    refused = rawhttp.request(gw.socket_path, "GET", "/v1.41/containers/json")
    assert refused.status == 403 and "profile 'local-socket'" in refused.json()["message"]


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def pki(tmp_path):
    """A CA, a server certificate for 127.0.0.1 and client certificates for CN=ci-1 and CN=viewer."""
    ca_key, ca = tmp_path / "ca.key", tmp_path / "ca.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=policy-test-ca",
             "-keyout", str(ca_key), "-out", str(ca))
    made = {"ca": ca}
    for name, subject, ext in (("server", "/CN=localhost", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                               ("ci", "/O=builds/CN=ci-1", "subjectAltName=DNS:ci-1.example\nextendedKeyUsage=clientAuth"),
                               ("viewer", "/CN=viewer", "extendedKeyUsage=clientAuth")):
        key, csr, cert, extfile = (tmp_path / f"{name}.{s}" for s in ("key", "csr", "pem", "ext"))
        extfile.write_text(ext + "\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(key), "-out", str(csr))
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "1",
                 "-extfile", str(extfile), "-out", str(cert))
        made[name] = (cert, key)
    return made


def test_tls_client_certificate_picks_the_profile(policy_gateway, pki, uniq):
    port = free_tcp_port()
    server_cert, server_key = pki["server"]
    gw = policy_gateway("""\
        profiles:
          - name: ci
            match: {cert_cn: "ci-*", cert_san: "DNS:*.example"}
            presets: [ci-runner]
          - name: viewer
            match: {cert_cn: viewer}
            presets: [dozzle]
        """, extra_args=["--listen", f"tcp://127.0.0.1:{port}", "--tlscert", str(server_cert),
                         "--tlskey", str(server_key), "--tlscacert", str(pki["ca"])],
        wait_ping=False)  # the harness pings over the unix socket, for which this policy has no profile
    host = f"tcp://127.0.0.1:{port}"

    def docker_as(who: str, *args: str):
        cert, key = pki[who]
        return run_docker(host, "--tlsverify", "--tlscacert", str(pki["ca"]), "--tlscert", str(cert),
                          "--tlskey", str(key), *args)

    name = f"pol-tls-{uniq}"
    created = docker_as("ci", "run", "--name", name, "ps-busybox", "echo", "from-ci")
    try:
        assert created.rc == 0, created.err
        assert docker_as("viewer", "logs", name).out == "from-ci\n"
        refused = docker_as("viewer", "rm", "-f", name)
        assert refused.rc != 0 and "profile 'viewer'" in refused.err
    finally:
        docker_as("ci", "rm", "-f", name)
    # no client certificate: the TLS handshake itself fails (--tlscacert requires one)
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        connection.request("GET", "/_ping")
        connection.getresponse().read()
    assert gw.running()

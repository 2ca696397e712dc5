"""The audit log, the Prometheus metrics and the health endpoint of a real gateway, driven by real clients."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import docker
import pytest

from harness import rawhttp
from harness.adapter_server import AdapterServer
from harness.gateway import free_tcp_port
from harness.ops import CREATE, config, http_get, metric, wait_for_log
from harness.util import wait_until

pytestmark = pytest.mark.docker

START = "POST /*/containers/*/start"


def hooked_config(server: AdapterServer) -> str:
    return config(
        {CREATE: {"pre": ["tag", "broken"]}, START: {"pre": ["deny"]}},
        {"tag": server.url("label", key="audited", value="yes"),
         "broken": {"url": server.url("garbage"), "failure_policy": "ignore"},
         "deny": server.url("status", code=403, message="not today")},
    )


def audit_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_audit_log_names_the_unix_peer_and_every_hook_decision(make_gateway, fresh, dockerd, uniq, tmp_path):
    audit = tmp_path / "audit.jsonl"
    gw = make_gateway(hooked_config(fresh), extra_args=["--audit-log", str(audit)])
    client = docker.DockerClient(base_url=gw.url, version="1.41")
    name = f"ob-{uniq}"
    try:
        container = client.containers.create("ps-busybox", ["true"], name=name)
        with pytest.raises(docker.errors.APIError, match="not today"):
            container.start()
        assert client.ping()
    finally:
        client.close()
        docker.DockerClient(base_url=dockerd.url).containers.get(name).remove(force=True)

    lines = audit_lines(audit)
    me = {"transport": "unix", "uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid()}
    assert all(line["client"] == me for line in lines), lines
    create = next(line for line in lines if line["path"] == "/v1.41/containers/create")
    assert create["method"] == "POST" and create["status"] == 201 and create["hooked"] is True
    assert create["target"] == f"/v1.41/containers/create?name={name}"
    assert len(create["uid"]) == 32 and "uid" not in next(line for line in lines if not line["hooked"])
    assert [(h["adapter"], h["phase"], h["decision"]) for h in create["hooks"]] == [
        ("tag", "pre", "ok"), ("broken", "pre", "ignored")]
    assert all(h["duration_ms"] > 0 for h in create["hooks"]) and create["duration_ms"] > 0
    start = next(line for line in lines if line["path"].endswith("/start"))
    assert (start["status"], start["error"], start["fault"]) == (403, "adapter deny: not today", "client")
    assert "fault" not in create and "error" not in create
    assert [(h["adapter"], h["decision"]) for h in start["hooks"]] == [("deny", "rejected")]
    ping = next(line for line in lines if line["path"] == "/_ping")
    assert ping["hooked"] is False and ping["hooks"] == [] and ping["status"] == 200
    assert all(line["config_generation"] == 1 and line["time"].endswith("Z") for line in lines)


def test_audit_log_to_stderr_names_the_tcp_peer(make_gateway):
    gw = make_gateway(tcp=True, extra_args=["--audit-log", "-"])
    client = docker.DockerClient(base_url=gw.tcp_url, version="1.41")
    try:
        client.version()
    finally:
        client.close()
    wait_for_log(gw, '"path":"/v1.41/version"', timeout=5)
    line = next(json.loads(text) for text in gw.log_text().splitlines() if '"path":"/v1.41/version"' in text)
    assert line["client"]["transport"] == "tcp" and line["client"]["address"].startswith("127.0.0.1:")
    assert line["status"] == 200


def test_metrics_move_with_requests_hooks_streams_and_reloads(make_gateway, fresh, dockerd, uniq):
    port = free_tcp_port()
    gw = make_gateway(hooked_config(fresh),
                      extra_args=["--metrics-listen", f"tcp://127.0.0.1:{port}", "--no-watch-config"])
    base = f"http://127.0.0.1:{port}"

    def scrape() -> str:
        status, body = http_get(f"{base}/metrics")
        assert status == 200
        return body.decode()

    status, body = http_get(f"{base}/health")
    assert (status, json.loads(body)) == (200, {"status": "ok", "config_generation": 1})

    before = scrape()
    for _ in range(5):
        assert rawhttp.request(gw.socket_path, "GET", "/_ping").status == 200
    name = f"ob-{uniq}"
    create = json.dumps({"Image": "ps-busybox", "Cmd": ["true"]}).encode()
    try:
        assert rawhttp.request(gw.socket_path, "POST", f"/v1.41/containers/create?name={name}", create,
                               {"Content-Type": "application/json"}).status == 201
        assert rawhttp.request(gw.socket_path, "POST", f"/v1.41/containers/{name}/start").status == 403
    finally:
        docker.DockerClient(base_url=dockerd.url).containers.get(name).remove(force=True)
    after = scrape()

    def delta(sample: str, **labels: str) -> float:
        return metric(after, sample, **labels) - metric(before, sample, **labels)

    assert delta("powerstrip_requests_total", method="GET", status_class="2xx", hooked="false") == 5
    assert delta("powerstrip_requests_total", method="POST", status_class="2xx", hooked="true") == 1
    assert delta("powerstrip_requests_total", method="POST", status_class="4xx", hooked="true") == 1
    assert delta("powerstrip_request_duration_seconds_count", hooked="true") == 2
    assert delta("powerstrip_hook_calls_total", adapter="tag", phase="pre", decision="ok") == 1
    assert delta("powerstrip_hook_calls_total", adapter="broken", phase="pre", decision="ignored") == 1
    assert delta("powerstrip_hook_calls_total", adapter="deny", phase="pre", decision="rejected") == 1
    assert delta("powerstrip_hook_failures_total", adapter="broken", phase="pre") == 1
    assert delta("powerstrip_hook_failures_total", adapter="deny") == 0
    assert delta("powerstrip_hook_duration_seconds_count", adapter="tag", phase="pre", decision="ok") == 1
    assert delta("powerstrip_hook_duration_seconds_count", adapter="deny", decision="rejected") == 1

    # an events stream is an open stream and an open connection while it lasts
    client = docker.DockerClient(base_url=gw.url, version="1.41", timeout=30)
    events = client.events(decode=True)
    try:
        wait_until(lambda: metric(scrape(), "powerstrip_open_streams") == 1, 10, 0.1, "open_streams == 1")
        assert metric(scrape(), "powerstrip_open_connections") >= 1
    finally:
        events.close()
        client.close()
    wait_until(lambda: metric(scrape(), "powerstrip_open_streams") == 0, 10, 0.1, "open_streams back to 0")
    wait_until(lambda: metric(scrape(), "powerstrip_open_connections") == 0, 10, 0.1, "open_connections == 0")

    Path(gw.config).write_text(config({}, {}))
    gw.proc.send_signal(signal.SIGHUP)
    wait_for_log(gw, "config reloaded (generation 2)")
    Path(gw.config).write_text("endpoints: [")
    gw.proc.send_signal(signal.SIGHUP)
    wait_for_log(gw, "config reload refused")
    text = scrape()
    assert metric(text, "powerstrip_config_reloads_total", result="ok") == 1
    assert metric(text, "powerstrip_config_reloads_total", result="failed") == 1
    assert metric(text, "powerstrip_config_generation") == 2
    assert 'path="' not in text and "/_ping" not in text  # no per-path labels
    status, body = http_get(f"{base}/health")
    assert (status, json.loads(body)) == (200, {"status": "ok", "config_generation": 2})


def self_signed(directory: Path, name: str, subject: str, *extra: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", subject,
                    *extra, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


def test_audit_log_names_the_tls_client_certificate(make_gateway, tmp_path, monkeypatch):
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests would let them override our CA
        monkeypatch.delenv(variable, raising=False)
    server_cert, server_key = self_signed(tmp_path, "server", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1")
    client_cert, client_key = self_signed(tmp_path, "client", "/O=example/CN=alice")
    audit = tmp_path / "audit.jsonl"
    port = free_tcp_port()
    make_gateway(extra_args=["--listen", f"tcp://127.0.0.1:{port}", "--tlscert", str(server_cert),
                             "--tlskey", str(server_key), "--tlscacert", str(client_cert),
                             "--audit-log", str(audit)])
    tls = docker.tls.TLSConfig(client_cert=(str(client_cert), str(client_key)), ca_cert=str(server_cert), verify=True)
    client = docker.DockerClient(base_url=f"https://127.0.0.1:{port}", tls=tls, version="1.41")
    try:
        assert client.ping()
    finally:
        client.close()
    wait_until(lambda: "/v1.41/_ping" in audit.read_text(), 5, 0.05, "the audit line of the ping")
    line = next(line for line in audit_lines(audit) if line["path"] == "/v1.41/_ping")
    assert line["client"]["transport"] == "tcp" and line["client"]["tls"] is True
    assert line["client"]["cert_subject"] == "O=example,CN=alice"

"""``serve --socket-proxy-env``: the documented behaviour of Tecnativa's docker-socket-proxy and LinuxServer's
fork (docs/policy.md lists each), driven by the docker CLI and raw requests against the real daemon."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness import rawhttp
from harness.cli import run_docker
from harness.gateway import REPO_ROOT
from harness.util import terminate, unix_ping, wait_until

pytestmark = pytest.mark.docker


@pytest.fixture
def proxy(make_gateway):
    def make(**env: str):
        return make_gateway(None, extra_args=["--socket-proxy-env"], env=env)
    return make


def status(gw, method: str, path: str, body: bytes | None = None) -> int:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    return rawhttp.request(gw.socket_path, method, path, body, headers).status


def test_defaults_ping_version_events_only(proxy):
    gw = proxy()
    assert status(gw, "GET", "/_ping") == 200 and status(gw, "HEAD", "/_ping") == 200
    assert status(gw, "GET", "/v1.41/version") == 200 and status(gw, "GET", "/version") == 200
    events = rawhttp.request(gw.socket_path, "GET", "/v1.41/events?since=0&until=1")
    assert events.status == 200
    for path in ("/v1.41/containers/json", "/v1.41/images/json", "/v1.41/info", "/v1.41/networks", "/v1.41/volumes"):
        reply = rawhttp.request(gw.socket_path, "GET", path)
        assert reply.status == 403, path
        assert "policy (profile 'socket-proxy-env')" in reply.json()["message"]
    assert status(gw, "POST", "/v1.41/events") == 403  # POST=0: only GET and HEAD


def test_containers_read_only_without_post(proxy, uniq):
    gw = proxy(CONTAINERS="1")
    assert run_docker(gw.url, "ps", "-a").rc == 0
    created = run_docker(gw.url, "create", "--name", f"pol-sp-{uniq}", "ps-busybox", "true")
    assert created.rc != 0 and "only GET and HEAD are allowed (POST=0)" in created.err
    assert run_docker(gw.url, "images").rc != 0  # IMAGES=0


def test_post_opens_every_method_of_enabled_sections(proxy, uniq, daemon):
    gw = proxy(CONTAINERS="1", POST="1")
    name = f"pol-sp-{uniq}"
    try:
        assert run_docker(gw.url, "create", "--name", name, "ps-busybox", "sleep", "30").rc == 0
        assert run_docker(gw.url, "start", name).rc == 0
        # /containers/{id}/exec is in CONTAINERS; /exec/{id}/start is EXEC's, off by default
        exec_run = run_docker(gw.url, "exec", name, "true")
        assert exec_run.rc != 0 and "received 403" in exec_run.err  # the CLI shows only the status of an upgrade
        assert rawhttp.request(gw.socket_path, "POST", f"/v1.41/containers/{name}/exec",
                               b'{"Cmd":["true"]}', {"Content-Type": "application/json"}).status == 201
        assert run_docker(gw.url, "rm", "-f", name).rc == 0  # DELETE passes too: the complaint users have
        assert run_docker(gw.url, "pull", "ps-busybox").rc != 0  # IMAGES=0 even with POST=1
    finally:
        run_docker(gw.url, "rm", "-f", name)
        try:
            daemon.api.remove_container(name, force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


def test_linuxserver_allows_work_without_post(proxy, daemon, uniq):
    gw = proxy(CONTAINERS="1", ALLOW_START="1", ALLOW_RESTARTS="1")
    name = f"pol-sp-{uniq}"
    daemon.api.create_container("ps-busybox", ["sleep", "30"], name=name)
    try:
        assert run_docker(gw.url, "start", name).rc == 0
        assert run_docker(gw.url, "restart", "-t", "0", name).rc == 0
        assert run_docker(gw.url, "stop", "-t", "0", name).rc == 0
        paused = run_docker(gw.url, "pause", name)  # ALLOW_PAUSE unset
        assert paused.rc != 0 and "POST=0" in paused.err
        removed = run_docker(gw.url, "rm", name)
        assert removed.rc != 0 and "POST=0" in removed.err
        assert daemon.api.inspect_container(name)["State"]["Status"] == "exited"
    finally:
        daemon.api.remove_container(name, force=True)


def test_allow_stop_alone_and_tecnativa_order(proxy, daemon, uniq):
    gw = proxy(CONTAINERS="1", ALLOW_STOP="1")
    name = f"pol-sp-{uniq}"
    daemon.api.create_container("ps-busybox", ["sleep", "30"], name=name)
    daemon.api.start(name)
    try:
        assert run_docker(gw.url, "restart", "-t", "0", name).rc != 0
        assert run_docker(gw.url, "kill", name).rc != 0
        assert run_docker(gw.url, "stop", "-t", "0", name).rc == 0
        assert run_docker(gw.url, "start", name).rc != 0
    finally:
        daemon.api.remove_container(name, force=True)


def test_linuxserver_deny_gates_apply_when_set(proxy, daemon, uniq):
    gw = proxy(CONTAINERS="1", POST="1", ALLOW_LOGS="0", ALLOW_EXEC="0", DELETE="0")
    name = f"pol-sp-{uniq}"
    daemon.api.create_container("ps-busybox", ["echo", "hi"], name=name)
    try:
        logs = run_docker(gw.url, "logs", name)
        assert logs.rc != 0 and "ALLOW_LOGS is 0" in logs.err
        assert status(gw, "POST", f"/v1.41/containers/{name}/exec", b'{"Cmd":["true"]}') == 403
        removed = run_docker(gw.url, "rm", name)
        assert removed.rc != 0 and "DELETE=0" in removed.err
        assert run_docker(gw.url, "inspect", name).rc == 0
    finally:
        daemon.api.remove_container(name, force=True)


def test_sections_are_prefixes_of_the_version_stripped_decoded_path(proxy):
    gw = proxy(INFO="1")
    for path in ("/info", "/v1.41/info", "/v1.24/info", "/v1.41/%69nfo"):
        assert status(gw, "GET", path) == 200, path
    assert status(gw, "GET", "/v1.41/x/../info") == 301  # allowed; dockerd's router redirects to the clean path
    for path in ("/v1.41/info/../containers/json", "/v1.41/containers/json?x=/info", "/v1.41/containers%2Fjson"):
        assert status(gw, "GET", path) == 403, path


def test_socket_path_names_the_daemon(dockerd, tmp_path):
    """Without --docker, SOCKET_PATH (the proxies' upstream variable) is the daemon."""
    sock = tmp_path / "proxy.sock"
    env = {"PATH": "/usr/bin:/bin", "SOCKET_PATH": dockerd.socket_path, "VERSION": "1",
           "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "powerstrip", "serve", "--socket-proxy-env", "--listen",
                             f"unix://{sock}"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_until(lambda: unix_ping(str(sock)), 30, 0.05, "the proxy's /_ping")
        reply = rawhttp.request(str(sock), "GET", "/v1.41/version")
        assert reply.status == 200 and reply.json()["ApiVersion"] == "1.41"
    finally:
        terminate(proc)
        proc.stderr.close()


def test_from_env_prints_the_rules_serve_enforces(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "CONTAINERS": "1", "ALLOW_START": "1"}
    printed = subprocess.run([sys.executable, "-m", "powerstrip", "policy", "from-env"], env=env, capture_output=True,
                             text=True, timeout=60, check=True).stdout
    (tmp_path / "p.yml").write_text(printed)
    checked = subprocess.run([sys.executable, "-m", "powerstrip", "policy", "check", str(tmp_path / "p.yml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert "allow * /containers/*/start" in " ".join(checked.stdout.split())
    explained = subprocess.run([sys.executable, "-m", "powerstrip", "policy", "explain", "POST",
                                "/v1.41/containers/abc/start", "--rules", str(tmp_path / "p.yml")],
                               capture_output=True, text=True, timeout=60)
    assert explained.returncode == 0 and "ALLOW_START=1" in explained.stdout

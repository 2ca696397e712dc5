"""Presets, each tried with the requests its client makes (read from those clients' Docker API use), against
the real daemon: every one passes the policy (whatever the daemon then answers), and writes they never make
are refused."""

from __future__ import annotations

import json

import pytest

from harness import rawhttp
from harness.cli import run_docker

pytestmark = pytest.mark.docker

F_CONTAINERS = "%7B%22type%22%3A%5B%22container%22%5D%7D"  # {"type":["container"]}

# (method, target, body): {id} is a running container, {image} the test image
MADE: dict[str, list[tuple[str, str, dict | None]]] = {
    "traefik": [("HEAD", "/_ping", None), ("GET", "/_ping", None), ("GET", "/v1.24/version", None),
                ("GET", "/v1.41/containers/json?limit=0", None), ("GET", "/v1.41/containers/{id}/json", None),
                ("GET", f"/v1.41/events?filters={F_CONTAINERS}&since=0&until=1", None),
                ("GET", "/v1.41/info", None)],
    "homepage": [("GET", "/_ping", None), ("GET", "/v1.41/containers/json?all=1", None),
                 ("GET", "/v1.41/containers/{id}/json", None), ("GET", "/v1.41/containers/{id}/stats?stream=false", None)],
    "dozzle": [("HEAD", "/_ping", None), ("GET", "/v1.41/version", None), ("GET", "/v1.41/info", None),
               ("GET", "/v1.41/containers/json?all=1", None), ("GET", "/v1.41/containers/{id}/json", None),
               ("GET", "/v1.41/containers/{id}/logs?stdout=1&stderr=1&tail=300&timestamps=1", None),
               ("GET", "/v1.41/containers/{id}/stats?stream=false", None),
               ("GET", f"/v1.41/events?since=0&until=1&filters={F_CONTAINERS}", None)],
    "watchtower": [("GET", "/_ping", None), ("GET", "/v1.41/containers/json", None),
                   ("GET", "/v1.41/containers/{id}/json", None), ("GET", "/v1.41/images/{image}/json", None),
                   ("POST", "/v1.41/images/create?fromImage=pol-absent-image&tag=latest", None),
                   ("POST", "/v1.41/containers/{id}/stop?t=0", None),
                   ("POST", "/v1.41/containers/create?name={new}", {"Image": "{image}", "Cmd": ["true"]}),
                   ("POST", "/v1.41/containers/{new}/start", None), ("DELETE", "/v1.41/containers/{new}?force=1", None)],
    "portainer": [("GET", "/_ping", None), ("GET", "/v1.41/info", None), ("GET", "/v1.41/system/df", None),
                  ("GET", "/v1.41/volumes", None), ("GET", "/v1.41/networks", None), ("GET", "/v1.41/images/json", None),
                  ("POST", "/v1.41/containers/{id}/restart?t=0", None)],
}
NEVER: dict[str, list[tuple[str, str]]] = {
    "traefik": [("POST", "/v1.41/containers/create"), ("POST", "/v1.41/containers/{id}/exec"),
                ("DELETE", "/v1.41/containers/{id}"), ("GET", "/v1.41/containers/{id}/logs"), ("GET", "/v1.41/secrets")],
    "homepage": [("POST", "/v1.41/containers/{id}/stop"), ("GET", "/v1.41/containers/{id}/archive?path=/")],
    "dozzle": [("POST", "/v1.41/containers/{id}/exec"), ("DELETE", "/v1.41/containers/{id}"), ("POST", "/v1.41/build")],
    "watchtower": [("POST", "/v1.41/containers/{id}/exec"), ("POST", "/v1.41/build"), ("POST", "/v1.41/swarm/init")],
    "portainer": [],
}


def _rules(sockets: dict[str, str]) -> str:
    profiles = [{"name": preset, "match": {"listener": f"unix://{path}"}, "presets": [preset]}
                for preset, path in sockets.items()]
    profiles.append({"name": "harness", "rules": [{"allow": "GET /_ping"}]})
    return json.dumps({"profiles": profiles})


def test_each_preset_allows_what_its_client_does(policy_gateway, daemon, uniq, tmp_path):
    sockets = {preset: str(tmp_path / f"{preset}.sock") for preset in MADE}
    policy_gateway(_rules(sockets), extra_args=[arg for path in sockets.values() for arg in ("--listen", f"unix://{path}")])
    running = f"pol-preset-{uniq}"
    daemon.api.create_container("ps-busybox", ["sleep", "60"], name=running)
    daemon.api.start(running)
    fill = {"id": running, "image": "ps-busybox", "new": f"pol-preset-new-{uniq}"}
    try:
        for preset, requests in MADE.items():
            for method, target, body in requests:
                target = target.format(**fill)
                data = json.dumps(body).replace("{image}", "ps-busybox").encode() if body is not None else None
                reply = rawhttp.request(sockets[preset], method, target, data,
                                        {"Content-Type": "application/json"} if data else {})
                assert reply.status != 403, (preset, method, target, reply.body)
                assert reply.status < 500 or method == "POST", (preset, method, target, reply.body)
            for method, target in NEVER[preset]:
                reply = rawhttp.request(sockets[preset], method, target.format(**fill), b"{}" if method == "POST" else None,
                                        {"Content-Type": "application/json"} if method == "POST" else {})
                assert reply.status == 403, (preset, method, target, reply.status)
            if not daemon.api.inspect_container(running)["State"]["Running"]:  # watchtower stopped it
                daemon.api.start(running)
    finally:
        for name in (running, fill["new"]):
            try:
                daemon.api.remove_container(name, force=True)
            except Exception:  # noqa: BLE001 - removed by the watchtower sequence
                pass


def test_ci_runner_preset_with_the_docker_cli(policy_gateway, uniq, tmp_path):
    gw = policy_gateway("""\
        profiles:
          - name: ci
            presets: [ci-runner]
        """)
    (tmp_path / "Dockerfile").write_text("FROM ps-busybox\nRUN echo built > /built\n")
    (tmp_path / "file.txt").write_text("copied\n")
    tag, name, net, vol = f"pol-ci-{uniq}", f"pol-ci-{uniq}", f"pol-ci-net-{uniq}", f"pol-ci-vol-{uniq}"
    steps = [("build", "-t", tag, str(tmp_path)), ("network", "create", net), ("volume", "create", vol),
             ("run", "-d", "--name", name, "--network", net, "-v", f"{vol}:/data", tag, "sleep", "60"),
             ("exec", name, "cat", "/built"), ("cp", str(tmp_path / "file.txt"), f"{name}:/data/file.txt"),
             ("exec", name, "cat", "/data/file.txt"), ("logs", name), ("rm", "-f", name), ("network", "rm", net),
             ("volume", "rm", vol), ("rmi", tag)]
    try:
        outputs = []
        for step in steps:
            result = run_docker(gw.url, *step, timeout=120)
            assert result.rc == 0, (step, result.err)
            outputs.append(result.out)
        assert outputs[4] == "built\n" and outputs[6] == "copied\n"
        refused = run_docker(gw.url, "run", "--rm", "--privileged", "ps-busybox", "true")
        assert refused.rc != 0 and "privileged containers are not allowed" in refused.err
    finally:
        for cleanup in (("rm", "-f", name), ("network", "rm", net), ("volume", "rm", vol), ("rmi", "-f", tag)):
            run_docker(gw.url, *cleanup)

"""Host powers a security review found unjudged, each against the real daemon.

The control sends the request straight to dockerd and shows what the daemon grants (a swarm's join tokens, a
service on the host network, a context fetched from the host's network, a bridge by name, a container without
no-new-privileges); the same request through a gateway whose tenant profile lacks the power is refused, or
changed so that the daemon's state shows the power withheld.
"""

from __future__ import annotations

import json

import docker
import pytest

from harness import rawhttp

pytestmark = pytest.mark.docker

RULES = """\
    profiles:
      - name: tenant
        rules: [{allow: "* /**"}]
        powers: {root: false}
"""
JSON = {"Content-Type": "application/json"}


def _post(socket_path: str, target: str, body: object = None) -> rawhttp.Reply:
    return rawhttp.request(socket_path, "POST", target, json.dumps(body).encode() if body is not None else None,
                           JSON if body is not None else {}, timeout=60)


def test_swarm_control_its_tokens_and_a_service_on_the_host_network_by_id(policy_gateway, dockerd, daemon, uniq):
    gw = policy_gateway(RULES)
    refused = _post(gw.socket_path, "/v1.41/swarm/init", {"ListenAddr": "127.0.0.1:2377", "AdvertiseAddr": "127.0.0.1"})
    assert refused.status == 403 and "(swarm)" in refused.json()["message"], refused.body
    init = _post(dockerd.socket_path, "/v1.41/swarm/init", {"ListenAddr": "127.0.0.1:2377", "AdvertiseAddr": "127.0.0.1"})
    assert init.status == 200, init.body  # the control: dockerd makes a swarm for whoever asks
    service = f"pol-svc-{uniq}"
    try:
        assert rawhttp.request(dockerd.socket_path, "GET", "/v1.41/swarm").json()["JoinTokens"]["Manager"]
        tokens = rawhttp.request(gw.socket_path, "GET", "/v1.41/swarm")
        assert tokens.status == 403 and b"SWMTKN" not in tokens.body
        host_id = daemon.networks.get("host").id
        for spec in ({"Networks": [{"Target": host_id}]}, {"TaskTemplate": {"Networks": [{"Target": host_id[:12]}]}}):
            body = {"Name": service, "TaskTemplate": {"ContainerSpec": {"Image": "ps-busybox", "User": "1000",
                                                                        "Command": ["sleep", "60"]},
                                                      **spec.get("TaskTemplate", {})},
                    **{k: v for k, v in spec.items() if k != "TaskTemplate"}}
            reply = _post(gw.socket_path, "/v1.41/services/create", body)
            assert reply.status == 403 and "the host network's ID" in reply.json()["message"], (spec, reply.body)
        # the control: dockerd takes the deprecated Spec.Networks with the host network's ID
        body = {"Name": service, "Networks": [{"Target": host_id}],
                "TaskTemplate": {"ContainerSpec": {"Image": "ps-busybox", "User": "1000", "Command": ["sleep", "60"]}}}
        created = _post(dockerd.socket_path, "/v1.41/services/create", body)
        assert created.status == 201, created.body
        spec = daemon.api.inspect_service(service)["Spec"]
        target = (spec.get("Networks") or spec["TaskTemplate"]["Networks"])[0]["Target"]  # swarm's ID for it
        assert daemon.api.inspect_network(target)["Name"] == "host"
        reply = _post(gw.socket_path, "/v1.41/services/create", {**body, "Networks": [{"Target": target}]})
        assert reply.status == 403 and "the host network's ID" in reply.json()["message"], reply.body
    finally:
        try:
            daemon.api.remove_service(service)
        except docker.errors.APIError:
            pass
        assert _post(dockerd.socket_path, "/v1.41/swarm/leave?force=1").status == 200


@pytest.mark.parametrize(("target", "what"), [
    ("/v1.41/build?remote=http%3A%2F%2F127.0.0.1%3A1%2Ffrom-the-host.tar", "error downloading remote context"),
    ("/v1.41/images/create?fromSrc=http%3A%2F%2F127.0.0.1%3A1%2Ffrom-the-host.tar&repo=pol-import", "127.0.0.1:1"),
])
def test_what_the_daemon_would_fetch_from_the_hosts_network_is_refused(policy_gateway, dockerd, target, what):
    direct = rawhttp.request(dockerd.socket_path, "POST", target, timeout=60)
    assert what in direct.body.decode(), direct.body  # the control: the daemon itself tried the URL
    via = rawhttp.request(policy_gateway(RULES).socket_path, "POST", target, timeout=60)
    assert via.status == 403 and "the daemon would fetch it from the host's network" in via.json()["message"], via.body


def test_a_bridge_named_by_the_client_is_refused(policy_gateway, dockerd, daemon, uniq):
    body = {"Name": f"pol-br-{uniq}", "Options": {"com.docker.network.bridge.name": f"psbr{uniq[:6]}"}}
    via = _post(policy_gateway(RULES).socket_path, "/v1.41/networks/create", body)
    assert via.status == 403 and "com.docker.network.bridge.name" in via.json()["message"], via.body
    direct = _post(dockerd.socket_path, "/v1.41/networks/create", body)
    try:
        assert direct.status == 201  # the control: dockerd names (or joins) the bridge as told
        assert daemon.networks.get(f"pol-br-{uniq}").attrs["Options"]["com.docker.network.bridge.name"]
    finally:
        daemon.networks.get(f"pol-br-{uniq}").remove()


def test_a_root_false_profiles_container_runs_with_no_new_privileges(policy_gateway, dockerd, daemon, uniq):
    """A setuid-root file (copied in, or in the image) makes a process uid 0 in a container without
    no-new-privileges, whatever user it starts as: the kernel's NoNewPrivs flag is the oracle."""
    gw = policy_gateway(RULES)
    body = {"Image": "ps-busybox", "User": "1000", "Cmd": ["sleep", "60"],
            "HostConfig": {"SecurityOpt": ["no-new-privileges=false"]}}
    names = {"direct": (dockerd, f"pol-nnp-d-{uniq}"), "gateway": (gw, f"pol-nnp-g-{uniq}")}
    flags = {}
    try:
        for side, (server, name) in names.items():
            created = _post(server.socket_path, f"/v1.41/containers/create?name={name}", body)
            assert created.status == 201, created.body
            daemon.api.start(name)
            exec_id = daemon.api.exec_create(name, ["grep", "NoNewPrivs", "/proc/self/status"])["Id"]
            flags[side] = daemon.api.exec_start(exec_id).decode().split()[-1]
        assert flags == {"direct": "0", "gateway": "1"}
    finally:
        for _, name in names.values():
            daemon.api.remove_container(name, force=True)

"""Ownership of what a request names besides its path: named volumes (Binds, Mounts), a commit's container, a legacy
start's HostConfig body, an endpoint's NetworkID, a name with a %-escape, a tag being moved. Two owner profiles on the
real daemon (team-a on the gateway's unix socket, team-b on a TCP listener); each refusal is shown against the same
request that works directly on dockerd (or for team-b), and the refused one leaves no trace."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import quote
from typing import Any

import docker
import pytest

from harness import rawhttp
from harness.gateway import free_tcp_port
from harness.image import tar_of

pytestmark = pytest.mark.docker

RULES = """\
    profiles:
      - name: team-a
        match: {{listener: "unix://./gw.sock"}}
        owner: team-a
        rules: [{{allow: "* /**"}}]
        powers: {{root: false}}
      - name: team-b
        match: {{listener: "tcp://127.0.0.1:{port}"}}
        owner: team-b
        rules: [{{allow: "* /**"}}]
        powers: {{root: false}}
    """
OWNER = "powerstrip.owner"
NOT_MINE = "named in the request is not one of this profile's"


class Client:
    """Raw Engine API requests on a unix socket or a TCP port: (status, decoded JSON or text)."""

    def __init__(self, socket_path: str | None = None, port: int | None = None) -> None:
        self.socket_path, self.port = socket_path, port

    def __call__(self, method: str, target: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.socket_path is not None:
            reply = rawhttp.request(self.socket_path, method, target, data, headers, timeout=60)
            status, raw = reply.status, reply.body
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                connection.request(method, target, body=data, headers=headers)
                response = connection.getresponse()
                status, raw = response.status, response.read()
            finally:
                connection.close()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")


@pytest.fixture
def teams(policy_gateway, dockerd):
    """(team-a through the gateway, team-b through the gateway, dockerd directly)."""
    port = free_tcp_port()
    gw = policy_gateway(RULES.format(port=port), extra_args=["--listen", f"tcp://127.0.0.1:{port}"])
    return Client(gw.socket_path), Client(port=port), Client(dockerd.socket_path)


@pytest.fixture
def cleanup(daemon):
    """Names to remove afterwards: ``cleanup["containers"].append(name)`` (and networks, volumes, images)."""
    made: dict[str, list[str]] = {"containers": [], "networks": [], "volumes": [], "images": []}
    yield made
    for name in made["containers"]:
        try:
            daemon.api.remove_container(name, force=True, v=False)
        except docker.errors.APIError:
            pass
    for kind, remove in (("images", lambda n: daemon.api.remove_image(n, force=True)),
                         ("networks", daemon.api.remove_network), ("volumes", daemon.api.remove_volume)):
        for name in made[kind]:
            try:
                remove(name)
            except docker.errors.APIError:
                pass


def box(cmd: list[str], **more: Any) -> dict[str, Any]:
    return {"Image": "ps-busybox", "User": "1000", "Cmd": cmd, **more}


def run(client: Client, name: str, body: dict[str, Any]) -> tuple[int, Any]:
    """create, start, wait; (create's status and answer) or (201, the logs)."""
    status, created = client("POST", f"/v1.41/containers/create?name={name}", body)
    if status != 201:
        return status, created
    assert client("POST", f"/v1.41/containers/{name}/start")[0] == 204
    client("POST", f"/v1.41/containers/{name}/wait")
    return 201, client("GET", f"/v1.41/containers/{name}/logs?stdout=1&stderr=1")[1]


def owned_by(daemon: docker.DockerClient, owner: str) -> set[str]:
    return {c["Names"][0].lstrip("/") for c in daemon.api.containers(all=True, filters={"label": f"{OWNER}={owner}"})}


def test_named_volumes_are_the_profiles_own(teams, daemon, uniq, cleanup):
    a, b, direct = teams
    bvol, avol, missing = f"pol-ref-bvol-{uniq}", f"pol-ref-avol-{uniq}", f"pol-ref-nosuch-{uniq}"
    cleanup["volumes"] += [bvol, avol, missing]
    cleanup["containers"] += [f"pol-ref-b-{uniq}", f"pol-ref-a-{uniq}", f"pol-ref-a2-{uniq}"]
    assert b("POST", "/v1.41/volumes/create", {"Name": bvol})[0] == 201
    cleanup["containers"].append(f"pol-ref-seed-{uniq}")
    seeded = run(direct, f"pol-ref-seed-{uniq}", {"Image": "ps-busybox", "Cmd": ["sh", "-c", "echo team-b-data > /d/s"],
                                                 "HostConfig": {"Binds": [f"{bvol}:/d"]}})
    assert seeded[0] == 201, seeded
    # team-b mounts its volume by name and reads it: the request itself works
    status, logs = run(b, f"pol-ref-b-{uniq}", box(["cat", "/x/s"], HostConfig={"Binds": [f"{bvol}:/x"]}))
    assert status == 201 and "team-b-data" in logs, (status, logs)
    before = owned_by(daemon, "team-a")
    for host in ({"Binds": [f"{bvol}:/x"]}, {"Binds": [f"{bvol}:/x:ro"]},
                 {"Mounts": [{"Type": "volume", "Source": bvol, "Target": "/x"}]}):
        status, answer = run(a, f"pol-ref-a-{uniq}", box(["cat", "/x/s"], HostConfig=host))
        assert status == 403 and f"volume '{bvol}' {NOT_MINE}" in answer["message"], (host, status, answer)
        # a volume that does not exist is refused alike, and dockerd does not create it unlabelled
        missing_host = json.loads(json.dumps(host).replace(bvol, missing))
        status, other = run(a, f"pol-ref-a-{uniq}", box(["true"], HostConfig=missing_host))
        assert (status, other["message"]) == (403, answer["message"].replace(bvol, missing)), other
    assert owned_by(daemon, "team-a") == before
    with pytest.raises(docker.errors.NotFound):
        daemon.volumes.get(missing)
    # its own volume, created first, it mounts by name
    assert a("POST", "/v1.41/volumes/create", {"Name": avol})[0] == 201
    status, logs = run(a, f"pol-ref-a2-{uniq}", box(["ls", "/x"], HostConfig={"Mounts": [
        {"Type": "volume", "Source": avol, "Target": "/x"}]}))
    assert status == 201, logs


def test_commit_of_another_owners_container_is_refused(teams, daemon, uniq, cleanup):
    a, b, direct = teams
    theirs, mine = f"pol-ref-bc-{uniq}", f"pol-ref-ac-{uniq}"
    cleanup["containers"] += [theirs, mine]
    cleanup["images"] += [f"pol-ref-stolen-{uniq}:1", f"pol-ref-bimg-{uniq}:1", f"pol-ref-aimg-{uniq}:1"]
    assert b("POST", f"/v1.41/containers/create?name={theirs}", box(["true"]))[0] == 201
    assert a("POST", f"/v1.41/containers/create?name={mine}", box(["true"]))[0] == 201
    assert b("POST", f"/v1.41/commit?container={theirs}&repo=pol-ref-bimg-{uniq}&tag=1")[0] == 201
    for query in (f"container={theirs}", f"container={mine}&container={theirs}"):
        status, answer = a("POST", f"/v1.41/commit?{query}&repo=pol-ref-stolen-{uniq}&tag=1")
        assert status == 404 and answer["message"].endswith(f"No such container: {theirs}"), (query, answer)
    with pytest.raises(docker.errors.ImageNotFound):
        daemon.images.get(f"pol-ref-stolen-{uniq}:1")
    assert a("POST", f"/v1.41/commit?container={mine}&repo=pol-ref-aimg-{uniq}&tag=1")[0] == 201


def test_a_legacy_start_body_names_only_the_profiles_own(teams, daemon, uniq, cleanup):
    a, b, direct = teams
    bsec, bnet, probe = f"pol-ref-bsec-{uniq}", f"pol-ref-bnet-{uniq}", f"pol-ref-probe-{uniq}"
    cleanup["containers"] += [bsec, probe, f"pol-ref-a1-{uniq}"]
    cleanup["networks"].append(bnet)
    assert b("POST", f"/v1.41/containers/create?name={bsec}", box(["sleep", "60"], Env=["SECRET=team-b"]))[0] == 201
    assert b("POST", f"/v1.41/containers/{bsec}/start")[0] == 204
    assert b("POST", "/v1.41/networks/create", {"Name": bnet})[0] == 201
    # directly, dockerd 20.10 applies a start body's HostConfig (API < 1.24): a link into team-b's container
    assert direct("POST", f"/v1.41/containers/create?name={probe}", box(["env"]))[0] == 201
    assert direct("POST", f"/v1.23/containers/{probe}/start", {"Links": [f"{bsec}:b"]})[0] == 204
    direct("POST", f"/v1.41/containers/{probe}/wait")
    assert "B_ENV_SECRET=team-b" in direct("GET", f"/v1.41/containers/{probe}/logs?stdout=1")[1]
    mine = f"pol-ref-a1-{uniq}"
    for body, named in (({"Links": [f"{bsec}:b"]}, f"container '{bsec}'"), ({"NetworkMode": bnet}, f"network '{bnet}'"),
                        ({"Binds": [f"pol-ref-nosuch-{uniq}:/x"]}, f"volume 'pol-ref-nosuch-{uniq}'")):
        assert a("POST", f"/v1.41/containers/create?name={mine}", box(["env"]))[0] == 201
        status, answer = a("POST", f"/v1.23/containers/{mine}/start", body)
        assert status == 403 and f"{named} {NOT_MINE}" in answer["message"], (body, status, answer)
        state = daemon.api.inspect_container(mine)
        assert state["State"]["StartedAt"].startswith("0001-") and not state["HostConfig"].get("Links"), state
        assert state["HostConfig"]["NetworkMode"] != bnet
        assert a("DELETE", f"/v1.41/containers/{mine}")[0] == 204
    assert b("POST", f"/v1.41/containers/{bsec}/kill")[0] == 204


def test_an_endpoint_network_id_names_the_network_joined(teams, daemon, uniq, cleanup):
    a, b, direct = teams
    anet, bnet = f"pol-ref-anet-{uniq}", f"pol-ref-bnet2-{uniq}"
    made, joined, ac = f"pol-ref-made-{uniq}", f"pol-ref-joined-{uniq}", f"pol-ref-ac2-{uniq}"
    cleanup["containers"] += [made, joined, ac]
    cleanup["networks"] += [anet, bnet]
    assert a("POST", "/v1.41/networks/create", {"Name": anet})[0] == 201
    status, created = b("POST", "/v1.41/networks/create", {"Name": bnet})
    assert status == 201
    bnet_id = created["Id"]
    body = box(["sleep", "60"], HostConfig={"NetworkMode": anet},
               NetworkingConfig={"EndpointsConfig": {anet: {"NetworkID": bnet_id}}})
    # directly, the NetworkID wins over the name: the container joins team-b's network
    assert direct("POST", f"/v1.41/containers/create?name={joined}", body)[0] == 201
    assert direct("POST", f"/v1.41/containers/{joined}/start")[0] == 204
    assert bnet in daemon.api.inspect_container(joined)["NetworkSettings"]["Networks"]
    before = owned_by(daemon, "team-a")
    status, answer = a("POST", f"/v1.41/containers/create?name={made}", body)
    assert status == 403 and f"network '{bnet_id}' {NOT_MINE}" in answer["message"], answer
    assert owned_by(daemon, "team-a") == before
    # nor can a connect to its own network name team-b's by NetworkID
    own = box(["sleep", "60"], HostConfig={"NetworkMode": anet})
    assert a("POST", f"/v1.41/containers/create?name={ac}", own)[0] == 201
    assert a("POST", f"/v1.41/containers/{ac}/start")[0] == 204
    status, answer = a("POST", f"/v1.41/networks/{anet}/connect",
                       {"Container": ac, "EndpointConfig": {"NetworkID": bnet_id}})
    assert status == 403 and f"network '{bnet_id}' {NOT_MINE}" in answer["message"], answer
    assert list(daemon.api.inspect_container(ac)["NetworkSettings"]["Networks"]) == [anet]
    for name in (joined, ac):
        daemon.api.remove_container(name, force=True)


def test_a_percent_escape_in_a_name_is_decoded_once(teams, daemon, uniq, cleanup):
    a, b, direct = teams
    name = f"pol-ref-b%41net-{uniq}"  # dockerd reads /networks/pol-ref-b%2541net-... as this name
    cleanup["networks"].append(name)
    assert b("POST", "/v1.41/networks/create", {"Name": name})[0] == 201
    escaped = name.replace("%", "%25")
    assert b("GET", f"/v1.41/networks/{escaped}")[0] == 200
    for method in ("GET", "DELETE"):
        status, answer = a(method, f"/v1.41/networks/{escaped}")
        assert status == 404 and answer["message"].endswith(f"network {name} not found"), (method, answer)
    assert daemon.api.inspect_network(name)["Labels"][OWNER] == "team-b"


def test_a_tag_naming_another_owners_image_is_not_moved(teams, daemon, uniq, cleanup):
    a, b, direct = teams
    bapp, aimg = f"pol-ref-bapp-{uniq}", f"pol-ref-aimg-{uniq}"
    bc, ac = f"pol-ref-bc2-{uniq}", f"pol-ref-ac3-{uniq}"
    cleanup["containers"] += [bc, ac]
    cleanup["images"] += [f"{bapp}:latest", f"{bapp}:v2", f"{aimg}:1", f"{aimg}:2"]
    assert b("POST", f"/v1.41/containers/create?name={bc}", box(["echo", "team-b app"]))[0] == 201
    assert a("POST", f"/v1.41/containers/create?name={ac}", box(["echo", "team-a code"]))[0] == 201
    # a commit copies the container's labels: each image is its owner's
    assert b("POST", f"/v1.41/commit?container={bc}&repo={bapp}&tag=latest")[0] == 201
    assert a("POST", f"/v1.41/commit?container={ac}&repo={aimg}&tag=1")[0] == 201
    theirs = daemon.images.get(f"{bapp}:latest")
    assert theirs.labels[OWNER] == "team-b" and daemon.images.get(f"{aimg}:1").labels[OWNER] == "team-a"
    assert a("DELETE", f"/v1.41/images/{bapp}:latest")[0] == 404
    # team-b moves its own tags; team-a may tag its image under a new name
    assert b("POST", f"/v1.41/images/{bapp}:latest/tag?repo={bapp}&tag=v2")[0] == 201
    assert a("POST", f"/v1.41/images/{aimg}:1/tag?repo={aimg}&tag=2")[0] == 201
    for target in (f"/v1.41/images/{aimg}:1/tag?repo={bapp}&tag=latest", f"/v1.41/images/{aimg}:1/tag?repo={bapp}",
                   f"/v1.41/images/{aimg}:1/tag?repo={aimg}&tag=3&tag=latest&repo={bapp}",
                   f"/v1.41/images/{aimg}:1/tag?repo=ps-busybox&tag=latest",
                   f"/v1.41/commit?container={ac}&repo={bapp}&tag=latest"):
        status, answer = a("POST", target)
        assert status == 403 and "names an image that is not one of this profile's" in answer["message"], \
            (target, answer)
    assert daemon.images.get(f"{bapp}:latest").id == theirs.id
    assert "team-a" not in json.dumps(daemon.images.get("ps-busybox:latest").labels or {})


def test_a_pull_or_an_import_does_not_move_another_owners_tag(teams, dockerd, daemon, uniq, cleanup):
    """An import names its image as a tag does: under team-b's name it would replace team-b's image with team-a's
    content (directly, dockerd does it: the control, on a copy of team-b's name). A pull would move the tag to what
    it pulls, or every tag of the repository when no tag is named: refused before the daemon tries the registry."""
    a, b, direct = teams
    bapp, mine, copy = f"pol-imp-bapp-{uniq}", f"pol-imp-a-{uniq}", f"pol-imp-copy-{uniq}"
    bc = f"pol-imp-bc-{uniq}"
    cleanup["containers"].append(bc)
    cleanup["images"] += [f"{bapp}:latest", f"{mine}:1", f"{copy}:latest"]
    assert b("POST", f"/v1.41/containers/create?name={bc}", box(["true"]))[0] == 201
    assert b("POST", f"/v1.41/commit?container={bc}&repo={bapp}&tag=latest")[0] == 201
    assert direct("POST", f"/v1.41/images/{bapp}:latest/tag?repo={copy}&tag=latest")[0] == 201
    theirs = daemon.images.get(f"{bapp}:latest")
    assert theirs.labels[OWNER] == "team-b"

    archive = tar_of({"hello.txt": b"team-a's content\n"})

    def imported(socket_path: str, repo: str, tag: str) -> rawhttp.Reply:
        return rawhttp.request(socket_path, "POST", f"/v1.41/images/create?fromSrc=-&repo={repo}&tag={tag}",
                               archive, {"Content-Type": "application/x-tar"}, timeout=60)

    control = imported(dockerd.socket_path, copy, "latest")
    assert control.status == 200, control.body
    assert daemon.images.get(f"{copy}:latest").id != theirs.id  # dockerd moved the tag to the imported image
    refused = imported(gw_socket(a), bapp, "latest")
    assert refused.status == 403 and "names an image that is not one of this profile's" in refused.json()["message"]
    assert imported(gw_socket(a), mine, "1").status == 200
    for target in (f"/v1.41/images/create?fromImage={bapp}&tag=latest", f"/v1.41/images/create?fromImage={bapp}"):
        status, answer = a("POST", target)
        assert status == 403 and ("another owner" in answer["message"] or "every tag" in answer["message"]), answer
    assert daemon.images.get(f"{bapp}:latest").id == theirs.id


def gw_socket(client: Client) -> str:
    assert client.socket_path is not None
    return client.socket_path


def test_swarm_secrets_and_configs_have_an_owner(teams, uniq):
    """In swarm mode (made directly: the tenants lack the swarm power), team-b's secret and config carry its
    owner label; team-a does not see them, cannot inspect, change or remove them, nor mount them in a service,
    and cannot give its service's task containers another owner's label."""
    a, b, direct = teams
    status, _ = direct("POST", "/v1.41/swarm/init", {"ListenAddr": "127.0.0.1:2377", "AdvertiseAddr": "127.0.0.1"})
    assert status == 200
    secret, config, service = f"pol-sec-{uniq}", f"pol-conf-{uniq}", f"pol-svc-{uniq}"
    try:
        status, made = b("POST", "/v1.41/secrets/create", {"Name": secret, "Data": "c2VjcmV0"})
        assert status == 201, made
        secret_id = made["ID"]
        assert b("POST", "/v1.41/configs/create", {"Name": config, "Data": "Y29uZmln"})[0] == 201
        status, listed = direct("GET", "/v1.41/secrets")
        assert [s["Spec"]["Labels"][OWNER] for s in listed if s["Spec"]["Name"] == secret] == ["team-b"]
        assert a("GET", "/v1.41/secrets")[1] == [] and a("GET", "/v1.41/configs")[1] == []
        assert [s["Spec"]["Name"] for s in b("GET", "/v1.41/secrets")[1]] == [secret]
        for target in (f"/v1.41/secrets/{secret}", f"/v1.41/secrets/{secret_id}", f"/v1.41/configs/{config}"):
            assert a("GET", target)[0] == 404 and a("DELETE", target)[0] == 404, target
        spec = {"Name": service, "Labels": {OWNER: "team-b"},
                "TaskTemplate": {"ContainerSpec": {"Image": "ps-busybox", "User": "1000", "Command": ["sleep", "60"],
                                                   "Labels": {OWNER: "team-b"},
                                                   "Secrets": [{"SecretID": secret_id, "SecretName": secret,
                                                                "File": {"Name": "s", "UID": "0", "GID": "0",
                                                                         "Mode": 292}}]}}}
        status, answer = a("POST", "/v1.41/services/create", spec)
        assert status == 403 and NOT_MINE in answer["message"], answer
        del spec["TaskTemplate"]["ContainerSpec"]["Secrets"]
        status, answer = a("POST", "/v1.41/services/create", spec)
        assert status == 201, answer
        made = direct("GET", f"/v1.41/services/{service}")[1]["Spec"]
        assert made["Labels"][OWNER] == "team-a" and made["TaskTemplate"]["ContainerSpec"]["Labels"][OWNER] == "team-a"
        assert direct("GET", f"/v1.41/secrets/{secret}")[0] == 200  # still there
        # its tasks are team-a's: team-b neither lists them nor reads one, team-a does both (and the daemon lists them)
        by_service = quote(json.dumps({"service": [service]}, separators=(",", ":")))
        deadline = time.monotonic() + 30
        while not (tasks := direct("GET", f"/v1.41/tasks?filters={by_service}")[1]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert tasks, "the swarm made no task for the service"
        task_id = tasks[0]["ID"]
        assert task_id in [t["ID"] for t in a("GET", "/v1.41/tasks")[1]]
        assert b("GET", "/v1.41/tasks")[1] == []
        assert a("GET", f"/v1.41/tasks/{task_id}")[0] == 200
        status, answer = b("GET", f"/v1.41/tasks/{task_id}")
        assert status == 404 and answer["message"].endswith(f"task {task_id} not found"), answer
    finally:
        direct("DELETE", f"/v1.41/services/{service}")
        assert direct("POST", "/v1.41/swarm/leave?force=1")[0] == 200

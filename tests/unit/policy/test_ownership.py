"""Ownership: what a request names (in its path, query and body) must be the profile's own, judged against a fake
daemon that knows team-a's and team-b's objects."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from powerstrip.adapters.net.docker_api import DockerError
from powerstrip.adapters.policy.adapter import PolicyAdapter
from powerstrip.adapters.policy.ownership import (
    moved_tags,
    referenced_containers,
    referenced_networks,
    referenced_volumes,
    references,
)
from powerstrip.adapters.policy.source import PolicySource
from powerstrip.hooks.model import ClientRequest, HookRejected, Peer
from powerstrip.hooks.scope import ExchangeScope

RULES = """\
    profiles:
      - name: team-a
        match: {uid: 0}
        owner: team-a
        rules: [{allow: "* /**"}]
        powers: {volumes_from: true, join_containers: true}
    """
A, B = {"powerstrip.owner": "team-a"}, {"powerstrip.owner": "team-b"}
BNET_ID = "b" * 64


class FakeDocker:
    """The inspects the ownership checks make, answered from a table (path -> labels); the rest is a 404."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        containers = {"ac": A, "bc": B}
        networks = {"anet": A, "bnet": B, BNET_ID: B, "b%41net": B}
        volumes = {"avol": A, "bvol": B, "plain": None}
        images = {"aimg:1": A, "bapp:latest": B, "ps-busybox:latest": None}
        self.table: dict[str, dict[str, Any]] = {
            **{f"/containers/{n}/json": {"Config": {"Labels": labels}} for n, labels in containers.items()},
            **{f"/networks/{n}": {"Labels": labels} for n, labels in networks.items()},
            **{f"/volumes/{n}": {"Labels": labels} for n, labels in volumes.items()},
            **{f"/images/{n}/json": {"Config": {"Labels": labels}} for n, labels in images.items()},
        }

    async def call(self, method: str, path: str, **_: Any) -> Any:
        self.calls.append(path)
        path = unquote(path)  # dockerd's router decodes the path once
        if path in self.table:
            return self.table[path]
        raise DockerError(404, "not found")

    async def close(self) -> None:
        pass


@pytest.fixture
def adapter(tmp_path: Path) -> PolicyAdapter:
    (tmp_path / "policy.yml").write_text(textwrap.dedent(RULES))
    return PolicyAdapter("policy", PolicySource(str(tmp_path / "policy.yml")), FakeDocker())  # type: ignore[arg-type]


def judge(adapter: PolicyAdapter, method: str, target: str, body: Any = None) -> None:
    text = None if body is None else json.dumps(body)
    asyncio.run(adapter.pre_hook(ClientRequest(method, target, text, uid="u", peer=Peer(uid=0),
                                               scope=ExchangeScope(ends=True))))


def refused(adapter: PolicyAdapter, method: str, target: str, body: Any = None) -> HookRejected:
    with pytest.raises(HookRejected) as caught:
        judge(adapter, method, target, body)
    return caught.value


def create(host: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    return {"Image": "ps-busybox", "User": "1000", "HostConfig": host or {}, **more}


# --- what a body names ---------------------------------------------------------------------------


def test_referenced_volumes_are_names_not_paths():
    host = {"Binds": ["bvol:/x", "/srv:/y", "/anonymous", "v2:/z:ro", ":/bad"],
            "Mounts": [{"Type": "volume", "Source": "m1", "Target": "/a"}, {"Type": "volume", "Target": "/anon"},
                       {"Type": "bind", "Source": "/srv", "Target": "/b"}, {"Type": "VOLUME", "Source": "m2"}]}
    assert referenced_volumes(host) == ["bvol", "v2", "m1", "m2"]
    assert referenced_volumes({"Binds": None, "Mounts": "x"}) == []


def test_a_legacy_start_body_is_a_host_config():
    start = {"Links": ["bsec:b"], "NetworkMode": "bnet", "VolumesFrom": ["x:ro"], "Binds": ["bvol:/x"]}
    assert referenced_containers(start, start=True) == ["x", "bsec"]
    assert referenced_networks(start, start=True) == ["bnet"]
    assert references("/containers/a1/start", start) == [
        ("container", "x"), ("container", "bsec"), ("network", "bnet"), ("volume", "bvol")]
    # a create body's fields are under HostConfig: the same names at the top level of a start body are its own
    assert references("/containers/create", start) == []


def test_endpoint_network_ids_and_links_are_references():
    body = create({"NetworkMode": "anet"}, NetworkingConfig={"EndpointsConfig": {
        "anet": {"NetworkID": BNET_ID, "Links": ["bc:alias"]}, "bridge": {"NetworkID": "x"}}})
    assert referenced_networks(body) == ["anet", BNET_ID, "x"]
    assert referenced_containers(body) == ["bc"]
    connect = {"Container": "ac", "EndpointConfig": {"NetworkID": BNET_ID, "Links": ["/bc:x"]}}
    assert references("/networks/anet/connect", connect) == [("container", "ac"), ("container", "bc"),
                                                               ("network", BNET_ID)]


def test_service_mounts_are_references():
    spec = {"TaskTemplate": {"ContainerSpec": {"Image": "x", "Mounts": [{"Type": "volume", "Source": "bvol"}]}}}
    assert references("/services/create", spec) == [("volume", "bvol")]
    assert references("/services/svc/update", spec) == [("volume", "bvol")]


def test_moved_tags_as_dockerd_forms_them():
    assert moved_tags("/images/aimg:1/tag", {"repo": ["bapp"], "tag": ["latest"]}) == ["bapp:latest"]
    assert moved_tags("/images/aimg:1/tag", {"repo": ["bapp"]}) == ["bapp:latest"]
    assert moved_tags("/images/x/tag", {"repo": ["reg:5000/b/app:1"], "tag": ["2"]}) == ["reg:5000/b/app:2"]
    assert moved_tags("/images/x/tag", {"repo": ["reg:5000/b/app"]}) == ["reg:5000/b/app:latest"]
    assert moved_tags("/images/x/tag", {"repo": ["b@sha256:00"]}) == ["b@sha256:00"]
    assert moved_tags("/images/x/tag", {"repo": ["x", "bapp"], "tag": ["1", "latest"]}) == [
        "x:1", "x:latest", "bapp:1", "bapp:latest"]
    assert moved_tags("/commit", {"container": ["ac"], "repo": ["bapp"]}) == ["bapp:latest"]
    assert moved_tags("/commit", {"container": ["ac"]}) == []
    assert moved_tags("/build", {"t": ["a:1", "bapp"]}) == ["a:1", "bapp:latest"]


# --- the adapter against a daemon ----------------------------------------------------------------


@pytest.mark.parametrize("host", [{"Binds": ["bvol:/x"]}, {"Binds": ["bvol:/x:ro"]},
                                  {"Mounts": [{"Type": "volume", "Source": "bvol", "Target": "/x"}]}])
def test_another_owners_volume_is_refused_and_a_missing_one_alike(adapter, host):
    theirs = refused(adapter, "POST", "/v1.41/containers/create", create(host))
    assert theirs.status == 403 and "volume 'bvol' named in the request is not one of this profile's" in theirs.message
    text = json.dumps(host)
    for name in ("nosuch", "plain"):  # missing (dockerd would create it unlabelled), and without an owner
        other = refused(adapter, "POST", "/v1.41/containers/create", create(json.loads(text.replace("bvol", name))))
        assert (other.status, other.message) == (403, theirs.message.replace("bvol", name))
    judge(adapter, "POST", "/v1.41/containers/create", create(json.loads(text.replace("bvol", "avol"))))
    judge(adapter, "POST", "/v1.41/containers/create", create({"Mounts": [
        {"Type": "volume", "Target": "/y"}, {"Type": "tmpfs", "Target": "/t"}]}))


def test_a_service_mounting_another_owners_volume_is_refused(adapter):
    spec = {"Name": "s", "TaskTemplate": {"ContainerSpec": {"Image": "ps-busybox", "User": "1000",
                                                            "Mounts": [{"Type": "volume", "Source": "bvol"}]}}}
    assert refused(adapter, "POST", "/v1.41/services/create", spec).status == 403
    spec["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Source"] = "avol"
    judge(adapter, "POST", "/v1.41/services/create", spec)


@pytest.mark.parametrize("body", [{"Links": ["bc:b"]}, {"NetworkMode": "bnet"}, {"NetworkMode": "container:bc"},
                                  {"VolumesFrom": ["bc"]}, {"Binds": ["bvol:/x"]}])
def test_a_legacy_start_body_is_judged_like_a_create(adapter, body):
    rejected = refused(adapter, "POST", "/v1.23/containers/ac/start", body)
    assert rejected.status == 403 and "named in the request is not one of this profile's" in rejected.message
    mine = json.loads(json.dumps(body).replace("bc", "ac").replace("bnet", "anet").replace("bvol", "avol"))
    judge(adapter, "POST", "/v1.23/containers/ac/start", mine)


def test_an_endpoint_network_id_is_judged(adapter):
    body = create({"NetworkMode": "anet"}, NetworkingConfig={"EndpointsConfig": {"anet": {"NetworkID": BNET_ID}}})
    rejected = refused(adapter, "POST", "/v1.41/containers/create", body)
    assert rejected.status == 403 and f"network {BNET_ID!r}" in rejected.message
    rejected = refused(adapter, "POST", "/v1.41/networks/anet/connect",
                       {"Container": "ac", "EndpointConfig": {"NetworkID": BNET_ID}})
    assert rejected.status == 403 and f"network {BNET_ID!r}" in rejected.message
    judge(adapter, "POST", "/v1.41/networks/anet/connect", {"Container": "ac", "EndpointConfig": {"NetworkID": "anet"}})


def test_commit_judges_every_container_value(adapter):
    for target in ("/v1.41/commit?container=bc&repo=x", "/v1.41/commit?container=ac&container=bc&repo=x",
                   "/v1.41/commit?container=bc&container=ac"):
        rejected = refused(adapter, "POST", target)
        assert (rejected.status, rejected.message) == (404, "No such container: bc"), target
    judge(adapter, "POST", "/v1.41/commit?container=ac&repo=mine")
    judge(adapter, "POST", "/v1.41/commit?container=nosuch&repo=mine")  # dockerd answers its own 404


def test_a_path_is_decoded_once(adapter):
    """'/networks/b%2541net' is dockerd's 'b%41net' (team-b's), not 'bAnet' (which does not exist)."""
    rejected = refused(adapter, "GET", "/v1.41/networks/b%2541net")
    assert (rejected.status, rejected.message) == (404, "network b%41net not found")
    assert adapter.docker.calls[-1] == "/networks/b%2541net"


@pytest.mark.parametrize("target", ["/v1.41/images/aimg:1/tag?repo=bapp&tag=latest",
                                    "/v1.41/images/aimg:1/tag?repo=bapp",
                                    "/v1.41/images/aimg:1/tag?repo=mine&tag=1&tag=latest&repo=bapp",
                                    "/v1.41/images/aimg:1/tag?repo=ps-busybox",
                                    "/v1.41/commit?container=ac&repo=bapp&tag=latest", "/v1.41/build?t=x:1&t=bapp"])
def test_a_tag_naming_another_owners_image_is_not_moved(adapter, target):
    rejected = refused(adapter, "POST", target)
    assert rejected.status == 403 and "names an image that is not one of this profile's" in rejected.message


def test_the_tags_a_pull_or_an_import_points_as_dockerd_forms_them():
    from powerstrip.adapters.policy.ownership import pulled_tags

    assert pulled_tags({"fromImage": ["bapp"], "tag": ["latest"]}) == ["bapp:latest"]
    assert pulled_tags({"fromImage": ["bapp:1"], "tag": ["2"]}) == ["bapp:2"]  # the tag replaces the image's own
    assert pulled_tags({"fromImage": ["reg:5000/b/app:1"]}) == ["reg:5000/b/app:1"]
    assert pulled_tags({"fromImage": ["bapp"], "tag": ["sha256:" + "0" * 64]}) == []  # by digest: no tag moves
    assert pulled_tags({"fromImage": ["bapp@sha256:" + "0" * 64]}) == []
    assert pulled_tags({"fromImage": ["reg:5000/b/app"]}) is None  # every tag of the repository
    assert pulled_tags({"fromImage": ["x", "bapp"], "tag": ["1"]}) == ["x:1", "bapp:1"]
    assert moved_tags("/images/create", {"fromSrc": ["-"], "repo": ["bapp"]}) == ["bapp:latest"]
    assert moved_tags("/images/create", {"fromImage": ["", "x"], "repo": ["bapp"], "tag": ["2"]}) == ["bapp:2"]
    assert moved_tags("/images/create", {"fromImage": ["x"], "repo": ["bapp"]}) == []  # a pull: repo is not read


@pytest.mark.parametrize("target", ["/v1.41/images/create?fromImage=bapp&tag=latest",
                                    "/v1.41/images/create?fromImage=bapp:latest",
                                    "/v1.41/images/create?fromImage=x&fromImage=bapp&tag=latest",
                                    "/v1.41/images/create?fromImage=bapp"])
def test_a_pull_that_would_move_another_owners_tag_is_refused(adapter, target):
    rejected = refused(adapter, "POST", target)
    assert rejected.status == 403 and ("names an image of another owner" in rejected.message
                                       or "pulls every tag" in rejected.message), rejected.message


@pytest.mark.parametrize("target", ["/v1.41/images/create?fromSrc=-&repo=bapp",
                                    "/v1.41/images/create?fromSrc=-&repo=ps-busybox&tag=latest"])
def test_an_import_under_a_name_that_is_not_ones_own_is_refused(adapter, target):
    rejected = refused(adapter, "POST", target)
    assert rejected.status == 403 and "names an image that is not one of this profile's" in rejected.message


def test_a_pull_of_a_shared_or_own_or_new_tag_and_an_import_under_a_new_name_go_on(adapter):
    for target in ("/v1.41/images/create?fromImage=ps-busybox&tag=latest",  # pulled images have no owner
                   "/v1.41/images/create?fromImage=aimg&tag=1", "/v1.41/images/create?fromImage=new&tag=1",
                   "/v1.41/images/create?fromImage=bapp&tag=sha256:" + "0" * 64,
                   "/v1.41/images/create?fromSrc=-&repo=new&tag=1", "/v1.41/images/create?fromSrc=-&repo=aimg&tag=1"):
        judge(adapter, "POST", target)


def test_a_task_belongs_to_its_services_owner_and_the_task_list_is_scoped(adapter):
    docker = adapter.docker
    docker.table.update({"/tasks/atask": {"Spec": {"ContainerSpec": {"Labels": A}}},
                         "/tasks/btask": {"Spec": {"ContainerSpec": {"Labels": B}}}})
    judge(adapter, "GET", "/v1.41/tasks/atask")
    judge(adapter, "GET", "/v1.41/tasks/atask/logs?stdout=1")
    for target in ("/v1.41/tasks/btask", "/v1.41/tasks/btask/logs?stdout=1"):
        rejected = refused(adapter, "GET", target)
        assert (rejected.status, rejected.message) == (404, "task btask not found"), target
    scoped = asyncio.run(adapter.pre_hook(ClientRequest("GET", "/v1.41/tasks", None, uid="u", peer=Peer(uid=0),
                                                        scope=ExchangeScope(ends=True))))
    assert "powerstrip.owner%3Dteam-a" in scoped.request


def test_a_load_needs_image_loads_for_a_profile_with_an_owner(adapter, tmp_path):
    rejected = refused(adapter, "POST", "/v1.41/images/load?quiet=1")
    assert rejected.status == 403 and "(image_loads)" in rejected.message


def test_a_tag_of_ones_own_or_a_new_name_is_moved(adapter):
    for target in ("/v1.41/images/aimg:1/tag?repo=aimg&tag=1", "/v1.41/images/aimg:1/tag?repo=new&tag=2",
                   "/v1.41/commit?container=ac&repo=new", "/v1.41/build?t=aimg:1&t=new"):
        judge(adapter, "POST", target)


# --- swarm secrets and configs ---------------------------------------------------------------------


def test_a_services_secrets_and_configs_are_references():
    spec = {"TaskTemplate": {"ContainerSpec": {"Image": "x", "Secrets": [{"SecretID": "s1", "SecretName": "n1"},
                                                                          {"SecretName": "n2"}],
                                               "Configs": [{"ConfigID": "c1"}, {"File": {"Name": "f"}}]}}}
    assert references("/services/create", spec) == [("secret", "s1"), ("secret", "n2"), ("config", "c1")]


def test_another_owners_secret_or_config_is_not_there(adapter):
    docker = adapter.docker
    docker.table.update({"/secrets/asec": {"Spec": {"Labels": A}}, "/secrets/bsec": {"Spec": {"Labels": B}},
                         "/configs/bconf": {"Spec": {"Labels": B}}})
    judge(adapter, "GET", "/v1.41/secrets/asec")
    assert refused(adapter, "GET", "/v1.41/secrets/bsec").status == 404
    assert refused(adapter, "DELETE", "/v1.41/configs/bconf").status == 404
    assert refused(adapter, "POST", "/v1.41/secrets/bsec/update?version=1", {"Name": "bsec"}).status == 404
    service = {"Name": "s", "TaskTemplate": {"ContainerSpec": {"Image": "ps-busybox", "User": "1000",
                                                               "Secrets": [{"SecretID": "bsec"}]}}}
    assert refused(adapter, "POST", "/v1.41/services/create", service).status == 403


def test_secrets_configs_and_a_services_task_containers_are_stamped():
    from powerstrip.adapters.policy.loader import parse_policy
    from powerstrip.adapters.policy.ownership import stamp_owner, stamped

    policy = parse_policy(textwrap.dedent(RULES), "policy.yml")
    profile = policy.profiles[0]
    assert stamped("/secrets/create") and stamped("/configs/create") and stamped("/secrets/x/update")
    assert stamped("/services/x/update") and not stamped("/containers/x/update")
    service = stamp_owner(policy, profile, {"Labels": B, "TaskTemplate": {"ContainerSpec": {"Labels": B}}})
    assert service["Labels"] == A and service["TaskTemplate"]["ContainerSpec"]["Labels"] == A


def test_a_builds_network_and_a_services_networks_are_references(adapter):
    assert references("/build", {}, {"networkmode": ["bnet", "default", "HOST", "container:bc"]}) == [
        ("network", "bnet"), ("container", "bc")]
    spec = {"Networks": [{"Target": "bnet"}, {"Target": "ingress"}],
            "TaskTemplate": {"ContainerSpec": {"Image": "x"}, "Networks": [{"Target": "host"}, {"Target": "anet"}]}}
    assert references("/services/create", spec) == [("network", "anet"), ("network", "bnet")]
    assert refused(adapter, "POST", "/v1.41/build?networkmode=bnet").status == 403
    judge(adapter, "POST", "/v1.41/build?networkmode=anet")
    service = {"Name": "s", "Networks": [{"Target": BNET_ID}],
               "TaskTemplate": {"ContainerSpec": {"Image": "ps-busybox", "User": "1000"}}}
    assert refused(adapter, "POST", "/v1.41/services/create", service).status == 403

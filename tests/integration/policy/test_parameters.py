"""Request parameters dockerd reads otherwise than a hook would: differential, the real daemon as the oracle.

Each trick is first sent straight to dockerd, to show what the daemon does with it (the control: it prunes
the other owner's container, builds with the parameter the hook would not have seen); then the same bytes go
through a gateway whose policy scopes prunes to the client's own objects, and must be refused with 400 (or
403) while the daemon's state shows nothing happened.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import docker
import pytest

from harness import rawhttp
from harness.image import tar_of
from tests.integration.policy.conftest import OWNER_TEAM_A, exists, remove_containers

pytestmark = pytest.mark.docker

RULES = OWNER_TEAM_A


def _filters(label: str) -> str:
    return quote(json.dumps({"label": [label]}))


def _victim(daemon: docker.DockerClient, name: str) -> None:
    daemon.api.create_container("ps-busybox", ["true"], name=name, labels={"powerstrip.owner": "team-b", "victim": name})


def _context(dockerfile: str) -> bytes:
    return tar_of({"Dockerfile": dockerfile.encode()})


def _prune_tricks(victim: str) -> dict[str, tuple[str, bytes | None, dict[str, str]]]:
    """Prunes whose filters dockerd reads from where a hook parsing the target with Python would not look."""
    return {
        # ParseForm reads a form body before the query: its filters are the ones r.Form.Get returns
        "form body": (f"/v1.41/containers/prune?filters={_filters('victim=nothing')}",
                      f"filters={_filters(f'victim={victim}')}".encode(),
                      {"Content-Type": "application/x-www-form-urlencoded"}),
        # Go's server has no fragment: the filters after '#' are a parameter; urlsplit drops them
        "fragment": (f"/v1.41/containers/prune?x=1#&filters={_filters(f'victim={victim}')}", None, {}),
    }


@pytest.mark.parametrize("trick", ["form body", "fragment"])
def test_a_prune_cannot_take_its_filters_from_where_the_hooks_do_not_look(policy_gateway, daemon, dockerd, uniq, trick):
    gw = policy_gateway(RULES)
    control, target = f"par-control-{uniq}", f"par-victim-{uniq}"
    try:
        _victim(daemon, control)
        _victim(daemon, target)
        path, body, headers = _prune_tricks(control)[trick]
        direct = rawhttp.request(dockerd.socket_path, "POST", path, body, headers)
        assert direct.status == 200 and not exists(daemon, control), (direct.status, direct.body)  # dockerd read them

        path, body, headers = _prune_tricks(target)[trick]
        via = rawhttp.request(gw.socket_path, "POST", path, body, headers)
        assert via.status == 400, (via.status, via.body)
        assert via.json()["message"].startswith("powerstrip: ")
        assert exists(daemon, target)
        # the owner-scoped prune itself still works, and still spares the other owner's container
        assert rawhttp.request(gw.socket_path, "POST", "/v1.41/containers/prune").status == 200
        assert exists(daemon, target)
    finally:
        remove_containers(daemon, control, target)


@pytest.mark.parametrize("separator", ["bad%zz", "a;b"])
def test_a_build_parameter_go_drops_is_refused(policy_gateway, daemon, dockerd, uniq, separator):
    """dockerd's build reads ``r.Form`` ignoring the parse error: a pair with a bad escape or a ';' vanishes,
    where Python's parse_qs keeps it; such a query is refused before any hook reads it."""
    gw = policy_gateway(RULES)
    tag = f"par-tag-{uniq}"
    target = f"/v1.41/build?t={separator}&t={tag}"
    context = _context("FROM ps-busybox\nLABEL par=1\n")
    try:
        direct = rawhttp.request(dockerd.socket_path, "POST", target, context, {"Content-Type": "application/x-tar"},
                                 timeout=120)
        assert direct.status == 200, direct.body
        tags = {t for image in daemon.images.list() for t in image.tags}
        assert f"{tag}:latest" in tags and not any(t.startswith(("bad", "a;")) for t in tags)  # the first t dropped
        daemon.images.remove(tag)

        via = rawhttp.request(gw.socket_path, "POST", target, context, {"Content-Type": "application/x-tar"}, timeout=60)
        assert via.status == 400 and "powerstrip: the query has" in via.json()["message"], via.body
        assert f"{tag}:latest" not in {t for image in daemon.images.list() for t in image.tags}
    finally:
        try:
            daemon.images.remove(tag)
        except docker.errors.ImageNotFound:
            pass


def test_a_build_cannot_hide_host_network_behind_a_second_value(policy_gateway, daemon, dockerd, uniq):
    """``networkmode=host&networkmode=default``: dockerd builds with the first (its RUN containers see the
    daemon's own interfaces, no eth0); the policy judges every value and refuses."""
    gw = policy_gateway(RULES)
    target = "/v1.41/build?networkmode=host&networkmode=default&rm=1"
    context = _context("FROM ps-busybox\nRUN cat /proc/net/dev\n")
    direct = rawhttp.request(dockerd.socket_path, "POST", target, context, {"Content-Type": "application/x-tar"},
                             timeout=120)
    output = "".join(json.loads(line).get("stream", "") for line in direct.body.splitlines() if line.strip())
    assert direct.status == 200 and "lo:" in output and "eth0:" not in output, output  # the host's network
    via = rawhttp.request(gw.socket_path, "POST", target, context, {"Content-Type": "application/x-tar"}, timeout=60)
    assert via.status == 403 and "networkmode=host" in via.json()["message"].lower(), via.body
    for image in daemon.images.list(filters={"dangling": True}):
        try:
            daemon.images.remove(image.id)
        except docker.errors.APIError:
            pass



@pytest.mark.parametrize("target", ["x:/containers/create", "v1.41:/v1.41/containers/create",
                                    "http://docker/v1.41/containers/create"])
def test_a_create_target_with_a_scheme_is_judged_and_refused(policy_gateway, daemon, dockerd, uniq, target):
    """Go's url.ParseRequestURI takes a scheme (and an authority after '//') off the target: dockerd creates a
    privileged container for ``POST x:/containers/create``. The gateway routes it as the create it is and refuses
    it, since an adapter matching the target it is given would not see a create."""
    gw = policy_gateway(RULES)
    body = json.dumps({"Image": "ps-busybox", "Cmd": ["true"], "HostConfig": {"Privileged": True}}).encode()
    headers = {"Content-Type": "application/json"}
    control, name = f"par-scheme-control-{uniq}", f"par-scheme-{uniq}"
    try:
        direct = rawhttp.request(dockerd.socket_path, "POST", f"{target}?name={control}", body, headers)
        assert direct.status == 201 and daemon.api.inspect_container(control)["HostConfig"]["Privileged"] is True
        via = rawhttp.request(gw.socket_path, "POST", f"{target}?name={name}", body, headers)
        assert via.status == 400 and "not a path" in via.json()["message"], via.body
        assert not exists(daemon, name)
    finally:
        remove_containers(daemon, control, name)

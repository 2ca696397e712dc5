"""Fixtures of the policy tests: a gateway whose adapters.yml runs builtin:policy with a given rules file."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator

import docker
import pytest

CONFIG = {
    "endpoints": {"* /*": {"pre": ["policy"]},
                  "POST /*/containers/create": {"post": ["policy"]},
                  "GET /*/containers/*/json": {"post": ["policy"]}},
    "adapters": {"policy": {"url": "builtin:policy", "rules": "policy.yml"}},
}


@pytest.fixture
def policy_gateway(make_gateway, tmp_path_factory):
    """``policy_gateway(rules_yaml, **Gateway kwargs)``: a gateway enforcing ``rules_yaml``; its rules file is
    ``gw.rules_path`` (rewrite it to test reloads)."""

    def make(rules: str, **kwargs):
        directory = tmp_path_factory.mktemp("policy")
        (directory / "policy.yml").write_text(textwrap.dedent(rules))
        (directory / "adapters.yml").write_text(json.dumps(CONFIG))
        gw = make_gateway(directory / "adapters.yml", **kwargs)
        gw.rules_path = directory / "policy.yml"
        return gw

    return make


@pytest.fixture
def daemon(dockerd) -> Iterator[docker.DockerClient]:
    """The Docker SDK talking to the private dockerd directly (the oracle of what was created)."""
    client = docker.DockerClient(base_url=dockerd.url)
    yield client
    client.close()


def exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.api.inspect_container(name)
    except docker.errors.NotFound:
        return False
    return True


def remove_containers(client: docker.DockerClient, *names: str) -> None:
    """Remove the containers a test made (force); one that is not there is no error."""
    for name in names:
        try:
            client.api.remove_container(name, force=True)
        except docker.errors.NotFound:
            pass


# A profile whose every request goes through the hook (an owner: no path-only shortcut), allowed everything
OWNER_TEAM_A = """\
    profiles:
      - name: team-a
        owner: team-a
        rules: [{allow: "* /**"}]
"""

"""docker-compose (Debian's 1.29, the Docker SDK for Python underneath) as a client of the policy."""

from __future__ import annotations

import subprocess
import textwrap

import pytest

from harness.cli import docker_env

pytestmark = pytest.mark.docker

RULES = """\
    profiles:
      - name: ci
        presets: [ci-runner]
        owner: ci
        powers:
          bind_sources: [/srv/ci]
"""


def compose(gw, project_dir, project: str, *args: str) -> subprocess.CompletedProcess:
    env = docker_env(gw.url, COMPOSE_PROJECT_NAME=project, COMPOSE_INTERACTIVE_NO_CLI="1")
    return subprocess.run(["docker-compose", *args], cwd=project_dir, env=env, capture_output=True, text=True,
                          timeout=180)


def test_compose_up_within_the_policy_and_refused_beyond_it(policy_gateway, tmp_path, uniq, daemon):
    gw = policy_gateway(RULES)
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    (good / "docker-compose.yml").write_text(textwrap.dedent("""\
        version: "3.8"
        services:
          web:
            image: ps-busybox
            command: ["sleep", "60"]
            volumes: ["data:/data"]
        volumes:
          data: {}
        """))
    (bad / "docker-compose.yml").write_text(textwrap.dedent("""\
        version: "3.8"
        services:
          web:
            image: ps-busybox
            command: ["true"]
            privileged: true
            volumes: ["/etc:/host-etc"]
        """))
    project = f"polc{uniq}"
    try:
        up = compose(gw, good, project, "up", "-d")
        assert up.returncode == 0, up.stderr
        labels = daemon.containers.get(f"{project}_web_1").labels
        assert labels["powerstrip.owner"] == "ci" and labels["com.docker.compose.project"] == project
        listed = compose(gw, good, project, "ps", "-q")
        assert listed.returncode == 0 and listed.stdout.strip()
        refused = compose(gw, bad, f"{project}bad", "up", "-d")
        assert refused.returncode != 0
        assert "privileged containers are not allowed" in refused.stderr
        assert "bind mount of '/etc' is not allowed" in refused.stderr
        assert not daemon.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}bad"})
    finally:
        compose(gw, good, project, "down", "-v", "-t", "0")
        compose(gw, bad, f"{project}bad", "down", "-v", "-t", "0")
        for container in daemon.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"}):
            container.remove(force=True)

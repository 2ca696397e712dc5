"""When the daemon is away: a clear 502 for the client, and recovery without a restart."""

from __future__ import annotations

import os

import pytest

from harness import rawhttp
from harness.cli import run_docker
from harness.gateway import Gateway

pytestmark = pytest.mark.docker


def test_daemon_down_gives_502_and_the_gateway_recovers_when_it_returns(dockerd, tmp_path):
    link = tmp_path / "docker.sock"  # the daemon "returns" when this link appears
    with Gateway(f"unix://{link}", wait_ping=False) as gw:
        reply = rawhttp.request(gw.socket_path, "GET", "/v1.41/version")
        assert reply.status == 502
        assert "cannot connect to the Docker daemon" in reply.json()["message"]
        result = run_docker(gw.url, "ps")
        assert result.rc == 1 and "Is the docker daemon running?" in result.err
        os.symlink(dockerd.socket_path, link)
        assert rawhttp.request(gw.socket_path, "GET", "/_ping").body == b"OK"
        assert run_docker(gw.url, "ps").rc == 0

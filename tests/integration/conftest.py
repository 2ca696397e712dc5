"""Fixtures shared by the hook tests: a real HTTP adapter server, and containers removed afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from harness.adapter_server import AdapterServer


@pytest.fixture(scope="session")
def adapter_server() -> Iterator[AdapterServer]:
    server = AdapterServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh(adapter_server: AdapterServer) -> AdapterServer:
    """The adapter server with no recorded calls."""
    adapter_server.calls.clear()
    return adapter_server


@pytest.fixture
def cleanup(dockerd) -> Iterator[list[str]]:
    """Names of containers the test creates; removed (forced) when it ends."""
    client = docker.DockerClient(base_url=dockerd.url)
    names: list[str] = []
    yield names
    for name in names:
        try:
            client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass
    client.close()

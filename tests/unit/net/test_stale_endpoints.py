"""Removing a Docker network that dockerd refuses because of an endpoint it kept for a gone container.

A fake daemon plays dockerd here: the stale endpoint is a daemon bug (moby#17217, moby#33156) that a
real dockerd produces only now and then under concurrent removals, so it cannot be staged on demand.
"""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest

from powerstrip.adapters.net.docker_api import DockerError
from powerstrip.adapters.net import networks as networks_module
from powerstrip.adapters.net.networks import DEFAULT, STATE_FILE, VirtualNetworks
from powerstrip.adapters.net.sqlite_store import SqliteStore

REFUSED = DockerError(403, "error while removing network: network ps-x id 1234 has active endpoints")


class StaleDaemon:
    """A daemon with network ``ps-x`` holding ``endpoints`` (name → whether its container still exists)."""

    def __init__(self, endpoints: dict[str, bool]) -> None:
        self.endpoints = dict(endpoints)
        self.calls: list[tuple[str, str, Any]] = []

    async def call(self, method: str, path: str, *, params: Any = None, body: Any = None) -> Any:
        self.calls.append((method, path, body))
        if method == "DELETE" and path == "/networks/ps-x":
            if self.endpoints:
                raise REFUSED
            return None
        if method == "GET" and path == "/networks/ps-x":
            return {"Name": "ps-x", "Containers": {f"id-{name}": {"Name": name} for name in self.endpoints}}
        if method == "GET" and path.startswith("/containers/"):
            ref = path.removeprefix("/containers/").removesuffix("/json").removeprefix("id-")
            if self.endpoints.get(ref):
                return {"Id": f"id-{ref}"}
            raise DockerError(404, f"No such container: {ref}")
        if method == "POST" and path == "/networks/ps-x/disconnect":
            assert body["Force"] is True
            del self.endpoints[body["Container"]]
            return None
        raise AssertionError(f"unexpected {method} {path}")

    async def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(networks_module, "BRIDGE_REMOVAL_SECONDS", 0.5)


def delete_x(tmp_path: Path, daemon: StaleDaemon) -> VirtualNetworks:
    """``powerstrip network rm x`` against ``daemon``: the store's network ``x`` is carried by ``ps-x``."""
    store = SqliteStore(tmp_path / STATE_FILE, seed=[DEFAULT])
    store.create_network("x", IPv4Network("10.9.0.0/24"))
    networks = VirtualNetworks(store, daemon)  # type: ignore[arg-type]
    asyncio.run(networks.delete("x"))
    return networks


def test_an_endpoint_of_a_gone_container_is_disconnected_and_the_network_removed(tmp_path: Path) -> None:
    daemon = StaleDaemon({"holder7": False})
    networks = delete_x(tmp_path, daemon)
    assert daemon.endpoints == {}
    assert ("POST", "/networks/ps-x/disconnect", {"Container": "holder7", "Force": True}) in daemon.calls
    assert daemon.calls[-1][:2] == ("DELETE", "/networks/ps-x")
    assert networks.left_behind == {}


def test_an_endpoint_of_a_live_container_is_left_and_the_network_left_behind(tmp_path: Path) -> None:
    """The virtual network is deleted all the same; its bridge is recorded for ``sweep_bridges``."""
    daemon = StaleDaemon({"holder7": True})
    networks = delete_x(tmp_path, daemon)
    assert daemon.endpoints == {"holder7": True}
    assert not [c for c in daemon.calls if c[0] == "POST"]
    assert networks.left_behind == {"ps-x": "x"}
    assert [n.name for n in networks.store.networks()] == ["default"]


def test_only_the_stale_of_several_endpoints_go(tmp_path: Path) -> None:
    daemon = StaleDaemon({"gone": False, "alive": True})
    networks = delete_x(tmp_path, daemon)
    assert daemon.endpoints == {"alive": True}
    assert networks.left_behind == {"ps-x": "x"}

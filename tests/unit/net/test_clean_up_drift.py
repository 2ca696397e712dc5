"""The tests' clean-up (``harness.net.clean_daemon``) survives a network dockerd refuses for a drifted
endpoint count (moby#42119): it restarts the daemon when it can, else leaves the network and says so.

A stand-in client plays dockerd: the drift cannot be produced on demand.
"""

from __future__ import annotations

from typing import Any

import docker
import pytest
import requests

from harness import net as harness_net
from harness.net import clean_daemon


def refused() -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = 403
    return docker.errors.APIError("error while removing network: network ps-x has active endpoints", response=response)


class Daemon:
    """Network ``ps-x``, with no endpoint, refused while ``drifted``; ``restart`` corrects the count."""

    def __init__(self, drifted: bool = True) -> None:
        self.drifted = drifted
        self.networks: dict[str, dict[str, Any]] = {"ps-x": {"Containers": {}}}
        self.restarts = 0

    def restart(self) -> None:
        self.restarts += 1
        self.drifted = False


class Network:
    def __init__(self, daemon: Daemon, name: str) -> None:
        self.daemon, self.name, self.id = daemon, name, name
        self.attrs = daemon.networks[name]

    def remove(self) -> None:
        if self.daemon.drifted:
            raise refused()
        del self.daemon.networks[self.name]


class Client:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.containers = self
        self.networks = self

    def list(self, **kwargs: Any) -> list[Any]:  # containers.list(all=True, ...): none; networks.list()
        return [] if kwargs.get("all") else [Network(self.daemon, name) for name in self.daemon.networks]

    def get(self, ref: str) -> Network:
        if ref not in self.daemon.networks:
            raise docker.errors.NotFound(ref)
        return Network(self.daemon, ref)


@pytest.fixture(autouse=True)
def short_patience(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = harness_net.remove_network.__defaults__
    monkeypatch.setattr(harness_net.remove_network, "__defaults__", (0.3,) + defaults[1:])


def test_a_drifted_network_is_removed_after_a_restart_of_dockerd() -> None:
    daemon = Daemon()
    assert clean_daemon(Client(daemon), daemon) == []  # type: ignore[arg-type]
    assert daemon.restarts == 1 and daemon.networks == {}


def test_without_dockerd_a_drifted_network_is_left_and_reported(capsys: pytest.CaptureFixture[str]) -> None:
    daemon = Daemon()
    assert clean_daemon(Client(daemon)) == ["ps-x"]  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "left ps-x" in out and "moby#42119" in out


def test_a_clean_daemon_is_not_restarted() -> None:
    daemon = Daemon(drifted=False)
    assert clean_daemon(Client(daemon), daemon) == []  # type: ignore[arg-type]
    assert daemon.restarts == 0 and daemon.networks == {}

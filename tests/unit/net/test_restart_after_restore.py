"""The net adapter starts a container that dockerd's restore could not (its network-only container started later).

No daemon here: the race is dockerd's timing (tests/integration/net/test_through_gateway.py meets it now
and then on a real restart); what is checked is which containers the repair starts and which it leaves.
"""

from __future__ import annotations

import asyncio
from typing import Any

from powerstrip.adapters.net.attachments import Attachments
from powerstrip.adapters.net.docker_api import DockerError

LOST_RACE = "cannot join network of a non running container: 6acaf7cf3880"


class FakeDocker:
    def __init__(self, state: dict[str, Any] | None) -> None:
        self.state = state
        self.calls: list[tuple[str, str]] = []

    async def call(self, method: str, path: str, **_: Any) -> Any:
        self.calls.append((method, path))
        if method == "GET":
            if self.state is None:
                raise DockerError(404, "No such container")
            return self.state
        return None


def repair(state: dict[str, Any] | None) -> list[tuple[str, str]]:
    docker = FakeDocker(state)
    attachments = Attachments(networks=None, docker=docker)  # type: ignore[arg-type]
    asyncio.run(attachments._restart_after_restore({"Id": "u1", "Names": ["/always"]}))
    return docker.calls


def state(policy: str, error: str) -> dict[str, Any]:
    return {"HostConfig": {"RestartPolicy": {"Name": policy}}, "State": {"Error": error}}


def test_a_container_that_lost_the_race_is_started() -> None:
    assert repair(state("always", LOST_RACE)) == [("GET", "/containers/u1/json"), ("POST", "/containers/u1/start")]
    assert repair(state("unless-stopped", LOST_RACE))[-1] == ("POST", "/containers/u1/start")


def test_a_stopped_one_or_one_without_a_restart_policy_is_left_alone() -> None:
    assert repair(state("always", "")) == [("GET", "/containers/u1/json")]  # stopped by its user
    assert repair(state("no", LOST_RACE)) == [("GET", "/containers/u1/json")]
    assert repair(state("on-failure", LOST_RACE)) == [("GET", "/containers/u1/json")]
    assert repair(None) == [("GET", "/containers/u1/json")]  # gone meanwhile

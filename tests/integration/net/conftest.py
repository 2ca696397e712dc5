"""Fixtures for the net adapter against a real private dockerd, without the gateway.

The adapter runs on an event loop in a thread of its own, as in the gateway: its watcher keeps
following the daemon between calls. ``NetHooks`` plays the gateway's part for one request:
pre-hook, forward to the daemon, post-hook.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import docker
import pytest

from harness.dockerd import PrivateDockerd
from harness.net import clean_daemon
from powerstrip.adapters import BuiltinContext
from powerstrip.adapters.net.adapter import NetAdapter, create_adapter
from powerstrip.adapters.net.model import Allocation
from powerstrip.hooks.model import ClientRequest, ServerResponse

T = TypeVar("T")


class NetHooks:
    """A ``net`` adapter on its own loop thread, and the gateway's part of an exchange."""

    def __init__(self, docker_url: str, state_dir: Path) -> None:
        self.docker_url = docker_url
        self.state_dir = state_dir
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.adapter: NetAdapter = self.run(self._open())

    async def _open(self) -> NetAdapter:
        connector = aiohttp.UnixConnector(path=self.docker_url.removeprefix("unix://"))
        self._session = aiohttp.ClientSession(connector=connector)
        return create_adapter(BuiltinContext("net", self.docker_url, self.state_dir))

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def exchange(self, method: str, target: str, body: str | None = None) -> tuple[ClientRequest, ServerResponse]:
        """What the gateway does for a hooked endpoint; returns the forwarded request and the answer."""
        forwarded = await self.adapter.pre_hook(ClientRequest(method, target, body))
        headers = {"Content-Type": "application/json"} if forwarded.body is not None else {}
        async with self._session.request(
            forwarded.method, "http://docker" + forwarded.request, data=forwarded.body, headers=headers
        ) as answer:
            response = ServerResponse(answer.status, answer.content_type, await answer.text())
        return forwarded, await self.adapter.post_hook(forwarded, response)

    def create(self, name: str, *cmd: str, env: tuple[str, ...] = (), image: str = "ubuntu", **extra: Any) -> ServerResponse:
        """``docker create --name NAME -e ENV... IMAGE CMD...`` through the hooks, as the CLI sends it."""
        body = {"Image": image, "Cmd": list(cmd) or None, "Env": list(env), **extra}
        body["HostConfig"] = {"NetworkMode": "default", **extra.get("HostConfig", {})}
        return self.run(self.exchange("POST", f"/v1.41/containers/create?name={name}", json.dumps(body)))[1]

    def remove(self, ref: str) -> ServerResponse:
        return self.run(self.exchange("DELETE", f"/v1.41/containers/{ref}?force=1"))[1]

    def start(self, ref: str) -> ServerResponse:
        return self.run(self.exchange("POST", f"/v1.41/containers/{ref}/start"))[1]

    def allocations(self) -> list[Allocation]:
        return self.adapter.networks.store.allocations()

    def close(self) -> None:
        async def shut() -> None:
            await self.adapter.close()
            await self._session.close()

        self.run(shut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def client(dockerd) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=dockerd.url, timeout=60)
    yield c
    clean_daemon(c, dockerd)  # dockerd: restarted if it refuses a network for a drifted endpoint count
    c.close()


@pytest.fixture
def hooks(dockerd, client, tmp_path) -> Iterator[NetHooks]:
    h = NetHooks(dockerd.url, tmp_path / "state")
    try:
        yield h
    finally:
        h.close()


def restart_dockerd(d: PrivateDockerd) -> None:
    """Stop the private daemon and start it again with the same data (as a host reboot would)."""
    d.restart()

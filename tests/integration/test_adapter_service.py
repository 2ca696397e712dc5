"""An adapter object served over HTTP (protocol v1) gives the gateway the same decisions as in-process."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request

import docker
import pytest
from aiohttp import web

from harness.cli import run_docker
from powerstrip.hooks.model import ClientRequest, HookRejected, ServerResponse
from powerstrip.hooks.service import build_app

pytestmark = pytest.mark.docker


class OwnerLabel:
    """Labels every container with its owner; refuses privileged ones."""

    name = "owner"

    async def pre_hook(self, request: ClientRequest) -> ClientRequest:
        body = json.loads(request.body or "{}")
        if body.get("HostConfig", {}).get("Privileged"):
            raise HookRejected(403, "privileged containers are not allowed")
        body.setdefault("Labels", {})["owner"] = "alice"
        return ClientRequest(request.method, request.request, json.dumps(body))

    async def post_hook(self, request: ClientRequest, response: ServerResponse) -> ServerResponse:
        return response

    async def close(self) -> None:
        pass


@pytest.fixture
def service():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(build_app(OwnerLabel()))

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_served_adapter_answers_ping_and_hooks(service, make_gateway, dockerd, uniq):
    assert urllib.request.urlopen(f"{service}/v1/ping", timeout=5).read() == b"pong"
    gw = make_gateway(json.dumps({"endpoints": {"POST /*/containers/create": {"pre": ["owner"]}},
                                  "adapters": {"owner": f"{service}/extension"}}))
    name = f"svc-{uniq}"
    client = docker.DockerClient(base_url=dockerd.url)
    try:
        assert run_docker(gw.url, "create", "--name", name, "ps-busybox", "true").rc == 0
        assert client.containers.get(name).labels == {"owner": "alice"}
        refused = run_docker(gw.url, "create", "--privileged", "ps-busybox", "true")
        assert refused.rc != 0
        assert "adapter owner: privileged containers are not allowed" in refused.err
    finally:
        client.containers.get(name).remove(force=True)
        client.close()

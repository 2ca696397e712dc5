"""HTTP adapters share one connection pool, but never each other's cookies (real aiohttp servers on loopback).

A cookie jar is kept per host, not per port: with one, a cookie the adapter on localhost:8080 set would
be sent to the adapter on localhost:9090 with every document, the client's request included.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import web

from powerstrip.adapters import BuiltinContext
from powerstrip.config.loader import load_config
from powerstrip.hooks.model import ClientRequest
from powerstrip.runtime.registry import AdapterRegistry
from tests.unit.loopback_server import serve


async def _adapter(cookies_seen: list[str | None]) -> tuple[web.AppRunner, int]:
    """A protocol-v1 adapter that passes the request on, sets a cookie and records the cookies it was sent."""
    async def hook(request: web.Request) -> web.Response:
        cookies_seen.append(request.headers.get("Cookie"))
        document = await request.json()
        reply = web.json_response({"PowerstripProtocolVersion": 1, "ModifiedClientRequest": document["ClientRequest"]})
        reply.set_cookie("session", "secret-of-this-adapter")
        return reply

    app = web.Application()
    app.router.add_post("/", hook)
    return await serve(app)


def test_an_adapter_is_not_sent_the_cookie_another_adapter_on_the_same_host_set(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[str | None], list[str | None]]:
        seen_a: list[str | None] = []
        seen_b: list[str | None] = []
        runner_a, port_a = await _adapter(seen_a)
        runner_b, port_b = await _adapter(seen_b)
        path = tmp_path / "adapters.yml"
        path.write_text(json.dumps({"endpoints": {"POST /*/x": {"pre": ["a", "b"]}},
                                    "adapters": {"a": f"http://localhost:{port_a}/", "b": f"http://localhost:{port_b}/"}}))
        registry = AdapterRegistry(load_config(path), BuiltinContext("", "unix:///nowhere", tmp_path))
        try:
            for _ in range(2):
                for name in ("a", "b"):
                    await registry.adapters[name].pre_hook(ClientRequest("POST", "/v1.41/x", None))
        finally:
            await registry.close()
            await runner_a.cleanup()
            await runner_b.cleanup()
        return seen_a, seen_b

    seen_a, seen_b = asyncio.run(scenario())
    assert seen_a == [None, None] and seen_b == [None, None]

"""An HTTP adapter's reply is read up to a cap, never whole into memory when it is larger (a real aiohttp server)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from powerstrip.hooks.http_adapter import ReplyTooLarge, _bounded_text
from tests.unit.loopback_server import serve


async def _serve_and_read(handler, limit: int) -> str:
    app = web.Application()
    app.router.add_post("/", handler)
    runner, port = await serve(app)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{port}/", json={}) as reply:
                return await _bounded_text(reply, limit)
    finally:
        await runner.cleanup()


async def _streamed(request: web.Request) -> web.StreamResponse:
    """A chunked reply with no length: only reading it shows its size."""
    response = web.StreamResponse()
    await response.prepare(request)
    for _ in range(64):
        await response.write(b"x" * 65536)
    await response.write_eof()
    return response


def test_a_reply_under_the_cap_is_read():
    assert asyncio.run(_serve_and_read(lambda _: web.json_response({"ok": True}), 1024)) == '{"ok": true}'


def test_a_declared_length_over_the_cap_is_refused_unread():
    with pytest.raises(ReplyTooLarge):
        asyncio.run(_serve_and_read(lambda _: web.Response(body=b"x" * 4096), 1024))


def test_a_chunked_reply_is_refused_once_it_passes_the_cap():
    with pytest.raises(ReplyTooLarge):
        asyncio.run(_serve_and_read(_streamed, 256 * 1024))

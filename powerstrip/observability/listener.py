"""The operators' listener: ``GET /metrics`` (Prometheus text format), ``GET /health``, and the JSON
views adapters register (``GET /hosts``, ``GET /messages`` of ``builtin:hostaware``; see ``extensions``).

It runs on the gateway's event loop, apart from the Docker API listeners, so that scraping it
never competes with (or is confused with) Docker clients.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from powerstrip.observability.extensions import EXTENSIONS, Extensions
from powerstrip.observability.metrics import Metrics
from powerstrip.proxy.addresses import Address
from powerstrip.proxy.server import claim_unix_path


def build_app(metrics: Metrics, health: Callable[[], tuple[int, dict[str, object]]],
              extensions: Extensions = EXTENSIONS) -> web.Application:
    async def get_metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def get_health(_request: web.Request) -> web.Response:
        status, document = health()
        return web.json_response(document, status=status)

    async def get_view(request: web.Request) -> web.Response:
        view = extensions.view(request.match_info["name"])
        if view is None:
            return web.json_response({"message": f"no such view: {request.path}"}, status=404)
        try:
            return web.json_response(await view(request.query))
        except ValueError as exc:  # a bad query parameter
            return web.json_response({"message": str(exc)}, status=400)

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/health", get_health)
    app.router.add_get("/{name:[a-z][a-z0-9_-]*}", get_view)
    return app


class OpsListener:
    """The running listener; ``close`` also removes its unix socket file."""

    def __init__(self, runner: web.AppRunner, address: Address) -> None:
        self._runner = runner
        self._address = address

    async def close(self) -> None:
        await self._runner.cleanup()
        if self._address.scheme == "unix":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._address.path)


async def start_listener(app: web.Application, address: Address) -> OpsListener:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        if address.scheme == "unix":
            claim_unix_path(address.path)
            site: web.BaseSite = web.UnixSite(runner, address.path)
        else:
            site = web.TCPSite(runner, address.host, address.port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return OpsListener(runner, address)

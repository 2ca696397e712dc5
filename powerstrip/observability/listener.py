"""The operators' listener: ``GET /metrics`` (Prometheus text format) and ``GET /health``.

It runs on the gateway's event loop, apart from the Docker API listeners, so that scraping it
never competes with (or is confused with) Docker clients.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from powerstrip.observability.metrics import Metrics
from powerstrip.proxy.addresses import Address


def build_app(metrics: Metrics, health: Callable[[], tuple[int, dict[str, object]]]) -> web.Application:
    async def get_metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def get_health(_request: web.Request) -> web.Response:
        status, document = health()
        return web.json_response(document, status=status)

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/health", get_health)
    return app


async def start_listener(app: web.Application, address: Address) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    if address.scheme == "unix":
        site: web.BaseSite = web.UnixSite(runner, address.path)
    else:
        site = web.TCPSite(runner, address.host, address.port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner

"""Keeps the store in step with the daemon when no request passes the gateway.

``docker run --rm`` containers are removed by the daemon itself and containers may be removed
through another socket, so the watcher follows the daemon's ``destroy`` events. It reconciles
whenever it (re)connects, which covers what happened while it was away, and every ``interval``
seconds, which retires addresses of create requests that never completed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from powerstrip.adapters.net.attachments import Attachments
from powerstrip.adapters.net.docker_api import DockerAPI

log = logging.getLogger(__name__)

_DESTROY_EVENTS = json.dumps({"type": ["container"], "event": ["destroy"]})


class Watcher:
    def __init__(self, attachments: Attachments, docker: DockerAPI, interval: float = 30.0, retry: float = 1.0) -> None:
        self.attachments = attachments
        self.docker = docker
        self.interval = interval
        self.retry = retry

    async def run(self) -> None:
        await asyncio.gather(self._follow_events(), self._reconcile_periodically())

    async def _follow_events(self) -> None:
        while True:
            try:
                since = f"{time.time():.3f}"  # the daemon replays what happens during the reconcile
                await self.attachments.reconcile()
                async for event in self.docker.stream("/events", {"filters": _DESTROY_EVENTS, "since": since}):
                    actor = event.get("Actor") or {}
                    await self.attachments.on_destroyed(actor.get("ID", ""), (actor.get("Attributes") or {}).get("name"))
            except Exception as exc:  # noqa: BLE001 - a supervision loop: log, wait, start over
                log.warning("net: following the daemon's events: %s (retrying)", exc)
            await asyncio.sleep(self.retry)

    async def _reconcile_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.attachments.reconcile()
            except Exception as exc:  # noqa: BLE001 - a supervision loop: log and try again later
                log.warning("net: reconcile failed: %s", exc)

"""Keeps this host's kernel in step with the policies, whoever changed what.

A pass (``Engine.sync``) runs every ``interval`` seconds, and at once when the daemon starts a
container (a network-only container after a daemon restart gets a new namespace, with nothing in
it) or the gateway made one (``poke``). So a policy added anywhere (this host's CLI, another host
of the cluster), a restart of powerstrip, of the daemon or of a container, or a qdisc deleted by
hand is repaired within ``interval`` plus one pass: 2 s plus well under a second here.
"""

from __future__ import annotations

import asyncio
import json
import logging

from powerstrip.adapters.net.model import StoreUnavailable
from powerstrip.adapters.qos.engine import Engine

log = logging.getLogger(__name__)

INTERVAL = 2.0
_STARTS = json.dumps({"type": ["container"], "event": ["start"]})


class QosConverger:
    def __init__(self, engine: Engine, interval: float = INTERVAL, retry: float = 1.0) -> None:
        self.engine = engine
        self.interval = interval
        self.retry = retry
        self._changed = asyncio.Event()

    def poke(self) -> None:
        """Run a pass now (e.g. a container was just created through the gateway)."""
        self._changed.set()

    async def run(self) -> None:
        await asyncio.gather(self._converge(), self._follow_starts())

    async def _converge(self) -> None:
        while True:
            self._changed.clear()
            try:
                await self.engine.sync()
            except StoreUnavailable as exc:
                log.warning("qos: %s (the kernel keeps its last state)", exc.message)
            except Exception:  # noqa: BLE001 - a supervision loop: log and try again
                log.exception("qos: a pass failed")
            try:
                await asyncio.wait_for(self._changed.wait(), self.interval)
            except TimeoutError:
                pass

    async def _follow_starts(self) -> None:
        docker = self.engine.networks.docker
        while True:
            try:
                async for _ in docker.stream("/events", {"filters": _STARTS}):
                    self.poke()
            except Exception as exc:  # noqa: BLE001 - a supervision loop: log, wait, start over
                log.debug("qos: following the daemon's events: %s (retrying)", exc)
            await asyncio.sleep(self.retry)

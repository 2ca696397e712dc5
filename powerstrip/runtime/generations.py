"""Which loaded config serves the next request, and when a replaced one's adapters may be closed.

Each loaded config is a *generation*: its routes, its adapters, and a count of the exchanges
using it. An exchange leases the current generation for its whole life, so a reload never
changes the hooks of a request already in flight; the next request (also on a kept-alive
connection) leases the new one. An adapter is closed once no generation that is current or
still leased holds it: adapters carried over to the new generation live on.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from powerstrip.config.model import Config
from powerstrip.hooks.model import Adapter
from powerstrip.proxy.generation import Runtime
from powerstrip.runtime.registry import AdapterRegistry

log = logging.getLogger("powerstrip.reload")


@dataclass(slots=True, eq=False)
class Generation:
    number: int
    config: Config
    registry: AdapterRegistry
    runtime: Runtime
    leases: int = 0
    retired: bool = False


class Generations:
    """The current generation plus the retired ones that requests still use."""

    def __init__(self, first: Generation) -> None:
        self.current = first
        self._retired: list[Generation] = []
        self._closing: set[asyncio.Task[None]] = set()

    def lease(self) -> Generation:
        generation = self.current
        generation.leases += 1
        return generation

    def release(self, generation: Generation) -> None:
        generation.leases -= 1
        if generation.retired and generation.leases == 0:
            self._retired.remove(generation)
            self._close_unused(generation)

    def swap(self, new: Generation) -> None:
        """Make ``new`` current: requests leased from the old one keep it until they finish."""
        old, self.current = self.current, new
        old.retired = True
        if old.leases:
            self._retired.append(old)
        else:
            self._close_unused(old)

    def _close_unused(self, generation: Generation) -> None:
        live = {id(adapter) for g in (self.current, *self._retired) for adapter in g.registry.adapters.values()}
        unused = [adapter for adapter in generation.registry.adapters.values() if id(adapter) not in live]
        if unused:
            task = asyncio.get_running_loop().create_task(_close(unused))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """At exit: close every adapter of every generation (each once) and the connection pool."""
        await asyncio.gather(*self._closing, return_exceptions=True)
        seen = {id(adapter) for adapter in self.current.registry.adapters.values()}
        for generation in self._retired:
            others = [a for a in generation.registry.adapters.values() if id(a) not in seen]
            seen.update(id(a) for a in others)
            await _close(others)
        self._retired.clear()
        await self.current.registry.close()


async def _close(adapters: list[Adapter]) -> None:
    for adapter in adapters:
        try:
            await adapter.close()
        except Exception:  # one adapter's failure to close must not keep the others open
            log.exception("closing adapter %s failed", getattr(adapter, "name", "?"))

"""Hot reload: load the config again on SIGHUP or when its file changes, and swap it in atomically.

An invalid new config is refused with one log line and the old one keeps serving. A valid one
becomes a new generation (see ``generations``): requests in flight finish with the old one.
The file is polled (device, inode, size, mtime) rather than watched with inotify: editors and
config managers replace files by rename, which a poll sees as a new inode, and a poll cannot
miss events while a watch is being re-armed on the new file.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from powerstrip.adapters import BuiltinContext
from powerstrip.config.loader import ConfigError
from powerstrip.config.model import Config
from powerstrip.config.routes import RouteTable
from powerstrip.proxy.generation import Runtime
from powerstrip.runtime.generations import Generation, Generations
from powerstrip.runtime.registry import AdapterRegistry

log = logging.getLogger("powerstrip.reload")

Signature = tuple[int, int, int, int]


def first_generation(config: Config, context: BuiltinContext) -> Generation:
    registry = AdapterRegistry(config, context)
    return Generation(1, config, registry, Runtime(RouteTable(config), registry.adapters))


def file_signature(path: Path | None) -> Signature | None:
    """What changes when the file is rewritten or replaced; None if there is no file (now)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class Reloader:
    """Loads the config again when asked (``request``) or when its file changes (``run`` polls it).

    ``load`` finds and reads the config (raising ``ConfigError``); ``on_result(ok, generation)``
    lets the metrics count reloads.
    """

    def __init__(self, generations: Generations, load: Callable[[], Config], poll_interval: float | None,
                 on_result: Callable[[bool, int], None] | None = None) -> None:
        self._generations = generations
        self._load = load
        self._poll_interval = poll_interval
        self._on_result = on_result
        self._wanted = asyncio.Event()
        self._seen = file_signature(generations.current.config.path)

    def request(self) -> None:
        """Reload soon (SIGHUP); several requests while one reload runs make one more reload."""
        self._wanted.set()

    async def run(self) -> None:
        """Reload on request or file change, one reload at a time, until cancelled."""
        while True:
            try:
                await asyncio.wait_for(self._wanted.wait(), self._poll_interval)
            except TimeoutError:
                signature = file_signature(self._generations.current.config.path)
                if signature is None or signature == self._seen:
                    continue
                log.info("config file %s changed", self._generations.current.config.path)
            self._wanted.clear()
            await self.reload()

    async def reload(self) -> bool:
        current = self._generations.current
        # taken before reading, so that a change made while loading is seen by the next poll
        signature = file_signature(current.config.path)
        try:
            config = await asyncio.to_thread(self._load)
            self._seen = file_signature(config.path) if config.path != current.config.path else signature
            registry = AdapterRegistry.succeeding(current.registry, current.config, config)
        except ConfigError as exc:
            self._seen = signature
            log.error("config reload refused, generation %d stays in service: %s",
                      current.number, "; ".join(exc.problems))
            self._report(False, current.number)
            return False
        except Exception as exc:  # an adapter that cannot be created: keep what works
            log.error("config reload refused, generation %d stays in service: cannot create adapters: %s",
                      current.number, exc)
            self._report(False, current.number)
            return False
        for warning in config.warnings:
            log.warning("%s", warning)
        new = Generation(current.number + 1, config, registry, Runtime(RouteTable(config), registry.adapters))
        self._generations.swap(new)
        log.info("config reloaded (generation %d) from %s: %s", new.number, config.path or "(none: pass-through)",
                 _changes(current, new))
        self._report(True, new.number)
        return True

    def _report(self, ok: bool, generation: int) -> None:
        if self._on_result is not None:
            self._on_result(ok, generation)


def _changes(old: Generation, new: Generation) -> str:
    before, after = old.registry.adapters, new.registry.adapters
    kept = sum(1 for name, adapter in after.items() if before.get(name) is adapter)
    removed = sum(1 for name, adapter in before.items() if after.get(name) is not adapter)
    return (f"{len(new.config.endpoints)} endpoint pattern(s) (was {len(old.config.endpoints)}), "
            f"{len(after)} adapter(s): {len(after) - kept} new, {kept} kept, {removed} closed or replaced")

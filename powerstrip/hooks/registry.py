"""Turning the config's ``adapters:`` into live adapter objects, and closing them again."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from powerstrip.adapters import BuiltinContext, create_builtin
from powerstrip.config.model import AdapterSpec, Config
from powerstrip.hooks.http_adapter import http_adapter
from powerstrip.hooks.inprocess import InProcessAdapter, import_adapter
from powerstrip.hooks.model import Adapter


class AdapterRegistry:
    """The adapters of one config; HTTP adapters share one keep-alive connection pool.

    ``python:`` adapters are imported from the config file's directory first, then ``sys.path``;
    one that cannot be imported raises ``AdapterLoadError``.
    """

    def __init__(self, config: Config, docker_url: str, state_dir: Path) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._search_path = (config.path.resolve().parent,) if config.path is not None else ()
        self.adapters: dict[str, Adapter] = {}
        # python: adapters first: an import that fails then leaves nothing running behind it.
        for spec in sorted(config.adapters.values(), key=lambda spec: spec.python is None):
            self.adapters[spec.name] = self._create(spec, docker_url, state_dir)

    def _create(self, spec: AdapterSpec, docker_url: str, state_dir: Path) -> Adapter:
        if spec.builtin is not None:
            return create_builtin(spec.builtin, BuiltinContext(spec.name, docker_url, state_dir))
        if spec.python is not None:
            return InProcessAdapter(spec, import_adapter(spec.python, self._search_path))
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
                headers={"Content-Type": "application/json"},
            )
        return http_adapter(spec, self._session)

    async def close(self) -> None:
        for adapter in self.adapters.values():
            await adapter.close()
        if self._session is not None:
            await self._session.close()

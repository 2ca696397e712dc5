"""Turning the config's ``adapters:`` into live adapter objects, and closing them again."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from powerstrip.adapters import BuiltinContext, create_builtin
from powerstrip.config.model import AdapterSpec, Config
from powerstrip.hooks.http_adapter import HttpAdapter
from powerstrip.hooks.model import Adapter

if TYPE_CHECKING:
    from powerstrip.adapters.net.cluster import ClusterSettings


class AdapterRegistry:
    """The adapters of one config; HTTP adapters share one keep-alive connection pool."""

    def __init__(self, config: Config, docker_url: str, state_dir: Path, cluster: ClusterSettings | None = None) -> None:
        self._session: aiohttp.ClientSession | None = None
        self.adapters: dict[str, Adapter] = {}
        for spec in config.adapters.values():
            self.adapters[spec.name] = self._create(spec, docker_url, state_dir, cluster)

    def _create(self, spec: AdapterSpec, docker_url: str, state_dir: Path, cluster: ClusterSettings | None) -> Adapter:
        if spec.builtin is not None:
            return create_builtin(spec.builtin, BuiltinContext(spec.name, docker_url, state_dir, cluster))
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
                headers={"Content-Type": "application/json"},
            )
        return HttpAdapter(spec, self._session)

    async def close(self) -> None:
        for adapter in self.adapters.values():
            await adapter.close()
        if self._session is not None:
            await self._session.close()

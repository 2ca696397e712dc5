"""Turning the config's ``adapters:`` into live adapter objects, and closing them again."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import aiohttp

from powerstrip.adapters import BuiltinContext, create_builtin
from powerstrip.config.model import AdapterSpec, Config
from powerstrip.hooks.http_adapter import adapter_session, http_adapter
from powerstrip.hooks.inprocess import InProcessAdapter, import_adapter
from powerstrip.hooks.model import Adapter


class AdapterRegistry:
    """The adapters of one config; HTTP adapters share one keep-alive connection pool.

    ``context`` is what built-in adapters get (its ``name`` is set per adapter). ``python:``
    adapters are imported from the config file's directory first, then ``sys.path``; one that
    cannot be imported raises ``AdapterLoadError``.
    """

    def __init__(self, config: Config, context: BuiltinContext) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._context = context
        self._search_path = _search_path(config)
        self.adapters: dict[str, Adapter] = {}
        for spec in _creation_order(config):
            self.adapters[spec.name] = self._create(spec)

    @classmethod
    def succeeding(cls, previous: AdapterRegistry, old: Config, new: Config) -> AdapterRegistry:
        """The registry of a reloaded config ``new``: adapters whose spec is unchanged are taken over
        from ``previous``, not re-created (the built-in ``net`` adapter holds a watcher and state), and
        so is the HTTP connection pool. Adapters ``previous`` has and this one lacks are left for the
        caller to close once no request uses them."""
        registry = cls.__new__(cls)
        registry._session, previous._session = previous._session, None
        registry._context = previous._context
        registry._search_path = _search_path(new)
        registry.adapters = {}
        try:
            for spec in _creation_order(new):
                before = old.adapters.get(spec.name)
                if before is not None and _unchanged(before, spec) and spec.name in previous.adapters:
                    registry.adapters[spec.name] = previous.adapters[spec.name]
                else:
                    registry.adapters[spec.name] = registry._create(spec)
        except BaseException:
            previous._session = registry._session  # the old config stays: it keeps the pool
            raise
        return registry

    def _create(self, spec: AdapterSpec) -> Adapter:
        if spec.builtin is not None:
            return create_builtin(spec.builtin, dataclasses.replace(self._context, name=spec.name, rules=spec.rules))
        if spec.python is not None:
            return InProcessAdapter(spec, import_adapter(spec.python, self._search_path))
        if self._session is None:
            self._session = adapter_session()
        return http_adapter(spec, self._session)

    async def close(self) -> None:
        for adapter in self.adapters.values():
            await adapter.close()
        if self._session is not None:
            await self._session.close()


def _search_path(config: Config) -> tuple[Path, ...]:
    return (config.path.resolve().parent,) if config.path is not None else ()


def _creation_order(config: Config) -> list[AdapterSpec]:
    """python: adapters first: an import that fails then leaves nothing running behind it."""
    return sorted(config.adapters.values(), key=lambda spec: spec.python is None)


def _unchanged(before: AdapterSpec, after: AdapterSpec) -> bool:
    """Same adapter settings; where in the file it is written does not matter."""
    return dataclasses.replace(before, line=0) == dataclasses.replace(after, line=0)

"""Config generations: leases keep a replaced config alive; adapters close once nothing uses them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from powerstrip.config.loader import load_config
from powerstrip.config.model import Config
from powerstrip.config.routes import RouteTable
from powerstrip.hooks.model import ClientRequest, ServerResponse
from powerstrip.adapters import BuiltinContext
from powerstrip.runtime.registry import AdapterRegistry
from powerstrip.proxy.generation import Runtime
from powerstrip.runtime.generations import Generation, Generations


class FakeAdapter:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = 0

    async def pre_hook(self, request: ClientRequest) -> ClientRequest:
        return request

    async def post_hook(self, request: ClientRequest, response: ServerResponse) -> ServerResponse:
        return response

    async def close(self) -> None:
        self.closed += 1


def generation(number: int, **adapters: FakeAdapter) -> Generation:
    registry = AdapterRegistry.__new__(AdapterRegistry)
    registry._session = None
    registry.adapters = dict(adapters)
    config = Config(path=None)
    return Generation(number, config, registry, Runtime(RouteTable(config), registry.adapters))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_removed_adapter_is_closed_when_the_last_request_using_it_ends() -> None:
    async def scenario() -> None:
        kept, removed = FakeAdapter("kept"), FakeAdapter("removed")
        generations = Generations(generation(1, kept=kept, removed=removed))
        lease = generations.lease()
        generations.swap(generation(2, kept=kept))
        await settle()
        assert removed.closed == 0 and generations.lease().number == 2
        generations.release(lease)
        await settle()
        assert (removed.closed, kept.closed) == (1, 0)
        await generations.close()
        assert (removed.closed, kept.closed) == (1, 1)

    asyncio.run(scenario())


def test_an_adapter_dropped_two_reloads_later_waits_for_the_oldest_request_using_it() -> None:
    async def scenario() -> None:
        shared = FakeAdapter("shared")
        generations = Generations(generation(1, shared=shared))
        oldest = generations.lease()
        generations.swap(generation(2, shared=shared))
        generations.swap(generation(3))  # generation 2 had no requests: retired at once
        await settle()
        assert shared.closed == 0  # generation 1 still serves a request with it
        generations.release(oldest)
        await settle()
        assert shared.closed == 1
        await generations.close()
        assert shared.closed == 1

    asyncio.run(scenario())


def test_close_at_exit_closes_adapters_of_generations_still_leased_once() -> None:
    async def scenario() -> None:
        a, b = FakeAdapter("a"), FakeAdapter("b")
        generations = Generations(generation(1, a=a, b=b))
        generations.lease()
        generations.swap(generation(2, a=a))
        await generations.close()
        assert (a.closed, b.closed) == (1, 1)

    asyncio.run(scenario())


def write(tmp_path: Path, adapters: dict[str, object], endpoints: dict[str, object] | None = None) -> Config:
    path = tmp_path / "adapters.yml"
    pre = list(adapters)
    path.write_text(json.dumps({"endpoints": endpoints or {"POST /*/x": {"pre": pre}}, "adapters": adapters}, indent=2))
    return load_config(path)


def test_the_successor_registry_takes_over_unchanged_adapters_and_the_pool(tmp_path: Path) -> None:
    async def scenario() -> None:
        old = write(tmp_path, {"same": "http://127.0.0.1:1/a", "moved": "http://127.0.0.1:1/b",
                               "gone": "http://127.0.0.1:1/c"})
        first = AdapterRegistry(old, BuiltinContext("", "unix:///nowhere", tmp_path))
        # "same" moves to another line of the file: still the same adapter
        new = write(tmp_path, {"added": "http://127.0.0.1:1/d", "same": "http://127.0.0.1:1/a",
                               "moved": {"url": "http://127.0.0.1:1/b", "timeout": 1}})
        assert old.adapters["same"].line != new.adapters["same"].line
        second = AdapterRegistry.succeeding(first, old, new)
        assert second.adapters["same"] is first.adapters["same"]
        assert second.adapters["moved"] is not first.adapters["moved"]
        assert set(second.adapters) == {"added", "same", "moved"}
        assert first._session is None and second._session is not None
        await second.close()

    asyncio.run(scenario())

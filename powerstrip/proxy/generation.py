"""What the relay needs of a loaded config: its routes and live adapters, and a lease while an exchange uses them.

The runtime layer above (``powerstrip.runtime.generations``) makes these from each config it loads and
swaps them on reload; the relay only reads the current one and leases it for a hooked exchange, so a
reload never pulls the adapters from under a request in flight. Declared here, by the layer that uses
them, so the proxy never imports the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from powerstrip.config.routes import RouteTable
from powerstrip.hooks.model import Adapter


@dataclass(frozen=True, slots=True)
class Runtime:
    """What a loaded config gives the relay: the routes and the live adapters they name."""

    routes: RouteTable
    adapters: dict[str, Adapter]


class Generation(Protocol):
    """One loaded config, numbered in load order."""

    @property
    def number(self) -> int: ...
    @property
    def runtime(self) -> Runtime: ...


class Generations(Protocol):
    """The current generation, and leases on it for exchanges that must keep it until they end."""

    @property
    def current(self) -> Generation: ...
    def lease(self) -> Generation: ...
    def release(self, generation: Generation) -> None: ...

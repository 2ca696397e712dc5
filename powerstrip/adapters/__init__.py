"""Built-in adapters: named in a config as ``builtin:NAME`` and run in-process.

Each entry maps a name to ``"module:factory"``; the module is imported only when a config
uses it, so a pass-through gateway never pays for adapters it does not run.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from powerstrip.config.builtins import BUILTINS
from powerstrip.hooks.model import Adapter

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class BuiltinContext:
    """What a built-in adapter may need from the gateway that runs it.

    The fields are what any built-in may use. What only some of them read (the net adapter's cluster,
    hostaware's metrics source) comes in ``settings``, as objects of types the adapters define
    themselves, and each adapter asks for its own by type (``context.setting(ClusterSettings)``). So
    this module, the adapter registry and the runtime never name an adapter's type, and a built-in
    that needs a new setting brings the type and the command-line option that makes it.
    """

    name: str
    docker_url: str
    state_dir: Path
    rules: str | None = None  # the adapter's own rules file (adapters.yml ``rules:``), e.g. builtin:policy's
    settings: tuple[object, ...] = ()  # adapter-specific settings, one object of each type at most

    def __post_init__(self) -> None:
        kinds = [type(item) for item in self.settings]
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"two settings of one type in {kinds}: an adapter could read only one of them")

    def setting(self, kind: type[S]) -> S | None:
        """The settings object of type ``kind`` the gateway was given; None when it has none (the
        option that makes it was not used), which each adapter reads as its own default."""
        for item in self.settings:
            if isinstance(item, kind):
                return item
        return None


class UnknownBuiltin(LookupError):
    pass


def create_builtin(builtin: str, context: BuiltinContext) -> Adapter:
    """Instantiate the built-in adapter ``builtin`` (e.g. ``"net"``) for ``context``."""
    try:
        target = BUILTINS[builtin]
    except KeyError:
        known = ", ".join(sorted(BUILTINS))
        raise UnknownBuiltin(f"unknown built-in adapter {builtin!r} (known: {known})") from None
    module_name, _, attr = target.partition(":")
    factory: Callable[[BuiltinContext], Adapter] = getattr(importlib.import_module(module_name), attr)
    return factory(context)

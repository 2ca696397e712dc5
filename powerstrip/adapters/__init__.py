"""Built-in adapters: named in a config as ``builtin:NAME`` and run in-process.

Each entry maps a name to ``"module:factory"``; the module is imported only when a config
uses it, so a pass-through gateway never pays for adapters it does not run.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from powerstrip.config.builtins import BUILTINS
from powerstrip.hooks.model import Adapter

if TYPE_CHECKING:
    from powerstrip.adapters.net.cluster import ClusterSettings

@dataclass(frozen=True, slots=True)
class BuiltinContext:
    """What a built-in adapter may need from the gateway that runs it."""

    name: str
    docker_url: str
    state_dir: Path
    cluster: ClusterSettings | None = None  # multi-host networking (serve --cluster)
    metrics_source: str | None = None  # hostaware: builtin (psutil) or gmond://HOST:PORT (serve --metrics-source)
    rules: str | None = None  # the adapter's own rules file (adapters.yml ``rules:``), e.g. builtin:policy's


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

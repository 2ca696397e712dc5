"""The validated configuration: what ``adapters.yml`` says, as immutable values."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

FailurePolicy = Literal["fail", "ignore"]
AdapterKind = Literal["mutating", "validating"]

DEFAULT_ADAPTER_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """One entry of ``adapters:``.

    ``url`` is ``http://...`` / ``https://...`` (an HTTP adapter speaking protocol ``protocol``),
    ``builtin:NAME`` (an adapter shipped with powerstrip) or ``python:MODULE:ATTR`` (an adapter
    written with the SDK); the last two run in-process. ``kind`` orders the chain: validating
    adapters run after every mutating one, so they judge the final request.
    """

    name: str
    url: str
    timeout: float = DEFAULT_ADAPTER_TIMEOUT
    failure_policy: FailurePolicy = "fail"
    protocol: int = 1
    kind: AdapterKind = "mutating"
    line: int = 0
    rules: str | None = None  # a built-in's own rules file (absolute), e.g. builtin:policy's

    @property
    def builtin(self) -> str | None:
        """The built-in adapter's name when ``url`` is ``builtin:NAME``, else ``None``."""
        return self.url.removeprefix("builtin:") if self.url.startswith("builtin:") else None

    @property
    def python(self) -> str | None:
        """``MODULE:ATTR`` when ``url`` is ``python:MODULE:ATTR``, else ``None``."""
        return self.url.removeprefix("python:") if self.url.startswith("python:") else None


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """One entry of ``endpoints:``: a ``"METHOD /path/glob"`` pattern and its hook chains."""

    pattern: str
    pre: tuple[str, ...] = ()
    post: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class Config:
    """A whole, valid configuration. ``path`` is None for the built-in pass-through config."""

    path: Path | None
    endpoints: tuple[EndpointSpec, ...] = ()
    adapters: dict[str, AdapterSpec] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

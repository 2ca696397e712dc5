"""Which hooks a request gets: endpoint patterns matched against the path the daemon will run.

This sits on the hot path of every request, so patterns are compiled once, grouped by
method (a method nobody configured costs one dict lookup), and results are cached.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from powerstrip.config.model import AdapterSpec, Config
from powerstrip.http.paths import ANY_METHOD, Pattern, normalize_path

ROUTE_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Route:
    """The hook chains for one request, in the order they run."""

    pre: tuple[AdapterSpec, ...]
    post: tuple[AdapterSpec, ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    regex: re.Pattern[str]
    pre: tuple[AdapterSpec, ...]
    post: tuple[AdapterSpec, ...]


class RouteTable:
    """All endpoint patterns of a config, compiled once; ``match`` answers per request."""

    def __init__(self, config: Config, cache_size: int = ROUTE_CACHE_SIZE) -> None:
        ordered: list[tuple[str, _Entry]] = []
        for endpoint in config.endpoints:
            pattern = Pattern.compile(endpoint.pattern)
            entry = _Entry(
                pattern.regex,
                tuple(config.adapters[name] for name in endpoint.pre),
                tuple(config.adapters[name] for name in endpoint.post),
            )
            ordered.append((pattern.method, entry))
        methods = {method for method, _ in ordered} - {ANY_METHOD}
        # "* /glob" entries join every method's list, in config order; other methods get only them
        self._by_method = {method: tuple(e for m, e in ordered if m in (method, ANY_METHOD)) for method in methods}
        self._any_method = tuple(e for m, e in ordered if m == ANY_METHOD)
        self._resolve = functools.lru_cache(maxsize=cache_size)(self._resolve_uncached)
        # in front, keyed by the raw target: a repeated request (a "* /*" route sees all) skips normalize_path
        self._by_target = functools.lru_cache(maxsize=cache_size)(self._by_target_uncached)

    def match(self, method: str, target: str) -> Route | None:
        """The hooks for ``method`` on request target ``target``, or None to pass through.

        ``target`` is the request target as the client sent it (path, optional query).
        """
        if method not in self._by_method and not self._any_method:
            return None
        return self._by_target(method, target)

    def _by_target_uncached(self, method: str, target: str) -> Route | None:
        return self._resolve(method, normalize_path(target))

    def _resolve_uncached(self, method: str, path: str) -> Route | None:
        """The chains of every matching pattern, concatenated in config order (see ``_phase``)."""
        entries = self._by_method.get(method, self._any_method)
        matching = [entry for entry in entries if entry.regex.match(path)]
        if not matching:
            return None
        return Route(_phase(entry.pre for entry in matching), _phase(entry.post for entry in matching))


def _phase(chains: Iterable[tuple[AdapterSpec, ...]]) -> tuple[AdapterSpec, ...]:
    """One phase's chain: patterns concatenated, validating adapters moved after the mutating ones.

    An adapter named by an earlier pattern is not run again for a later one; a list that names an
    adapter twice (``[debug, x, debug]``) runs it twice, as written.
    """
    joined: list[AdapterSpec] = []
    seen: set[AdapterSpec] = set()
    for chain in chains:
        joined.extend(spec for spec in chain if spec not in seen)
        seen.update(chain)
    mutating = tuple(spec for spec in joined if spec.kind != "validating")
    return mutating + tuple(spec for spec in joined if spec.kind == "validating")

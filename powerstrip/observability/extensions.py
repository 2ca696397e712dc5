"""What adapters add to the operators' listener and the audit log, without observability knowing them.

An adapter (e.g. ``builtin:hostaware``) registers an ``Extension`` in ``EXTENSIONS`` when it starts
and removes it when it closes: its JSON views (``GET /hosts``) are served by the metrics listener
and its Prometheus metric families are scraped with the gateway's own. Dependencies stay one-way:
adapters import this module, never the reverse. Audit entries that are not requests (an action a
rule carried out) go through ``EXTENSIONS.audit`` to the audit log when one is configured.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client.metrics_core import Metric

log = logging.getLogger("powerstrip")

View = Callable[[Mapping[str, str]], Awaitable[Any]]  # query parameters → a JSON-serialisable document
AuditSink = Callable[[dict[str, Any]], None]


class Extension(Protocol):
    name: str

    def views(self) -> Mapping[str, View]:
        """``{"hosts": view}``: served as ``GET /hosts``."""
        ...

    def metric_families(self) -> Iterable[Metric]: ...


class Extensions:
    def __init__(self) -> None:
        self._extensions: list[Extension] = []
        self._sinks: list[AuditSink] = []

    def add(self, extension: Extension) -> None:
        self._extensions.append(extension)

    def remove(self, extension: Extension) -> None:
        if extension in self._extensions:
            self._extensions.remove(extension)

    def view(self, name: str) -> View | None:
        """The newest extension's view of that name (after a reload the new adapter instance answers)."""
        for extension in reversed(self._extensions):
            found = extension.views().get(name)
            if found is not None:
                return found
        return None

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's collector protocol: the families of every extension, each name once."""
        seen: set[str] = set()
        for extension in reversed(self._extensions):
            for family in extension.metric_families():
                if family.name not in seen:
                    seen.add(family.name)
                    yield family

    def add_audit_sink(self, sink: AuditSink) -> None:
        self._sinks.append(sink)

    def remove_audit_sink(self, sink: AuditSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    @property
    def auditing(self) -> bool:
        """Whether an audit log listens: an adapter can skip building entries nobody writes."""
        return bool(self._sinks)

    def audit(self, entry: dict[str, Any]) -> None:
        for sink in self._sinks:
            try:
                sink(entry)
            except Exception:  # noqa: BLE001 - auditing must never break what it records
                log.exception("audit sink failed")


EXTENSIONS = Extensions()

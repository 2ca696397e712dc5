"""Prometheus metrics of the gateway, in a registry of its own (not the process-wide default one).

Labels are few and bounded: method (known ones, else ``other``), status class, hooked or not,
adapter name and phase (from the config), decision (a short word from the hook chain). Never a path.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from powerstrip.observability.extensions import EXTENSIONS, Extensions
from powerstrip.proxy.connection import ClientConnection, ExchangeRecord

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
FAILURE_DECISIONS = frozenset({"failed", "ignored"})  # the adapter did not answer usably
NOT_CALLED = frozenset({"skipped"})  # a dry run passed the adapter by: no duration to observe
_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_HOOK_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    def __init__(self, open_connections: Callable[[], float], open_streams: Callable[[], float],
                 extensions: Extensions = EXTENSIONS) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        r.register(extensions)  # the adapters' gauges (e.g. powerstrip_host_metric), read when scraped
        self.requests = Counter("powerstrip_requests", "Requests answered (or cut), by method, status class "
                                "(2xx..5xx; 0xx: no status sent) and whether hooks ran.",
                                ["method", "status_class", "hooked"], registry=r)
        self.duration = Histogram("powerstrip_request_duration_seconds", "Time from request head to the end "
                                  "of the response (streams included).", ["hooked"], buckets=_DURATION_BUCKETS,
                                  registry=r)
        self.hook_calls = Counter("powerstrip_hook_calls", "Hook calls by adapter, phase (pre/post) and "
                                  "decision (ok, rejected, failed, ignored, skipped, ...).",
                                  ["adapter", "phase", "decision"], registry=r)
        self.hook_duration = Histogram("powerstrip_hook_duration_seconds", "Time one hook call took.",
                                       ["adapter", "phase", "decision"], buckets=_HOOK_BUCKETS, registry=r)
        self.hook_failures = Counter("powerstrip_hook_failures", "Hook calls that gave no usable answer "
                                     "(decision failed or ignored).", ["adapter", "phase"], registry=r)
        self.hook_warnings = Counter("powerstrip_hook_warnings", "Warnings adapters gave (each one a Warning "
                                     "header of the response).", ["adapter", "phase"], registry=r)
        Gauge("powerstrip_open_connections", "Client connections open now.",
              registry=r).set_function(open_connections)
        Gauge("powerstrip_open_streams", "Responses relayed as streams now (events, logs -f, attach, ...).",
              registry=r).set_function(open_streams)
        self.reloads = Counter("powerstrip_config_reloads", "Config reloads, by result (ok, failed).",
                               ["result"], registry=r)
        self.generation = Gauge("powerstrip_config_generation", "The config generation in service "
                                "(1 at start, +1 per successful reload).", registry=r)
        self.generation.set(1)
        for result in ("ok", "failed"):
            self.reloads.labels(result)

    def exchanged(self, client: ClientConnection, record: ExchangeRecord) -> None:
        method = record.method if record.method in _METHODS else "other"
        hooked = "true" if record.hooked else "false"
        self.requests.labels(method, f"{record.outcome.status // 100}xx", hooked).inc()
        self.duration.labels(hooked).observe(record.seconds)
        for hook in record.outcome.hooks:
            self.hook_calls.labels(hook.adapter, hook.phase, hook.outcome).inc()
            if hook.outcome not in NOT_CALLED:
                self.hook_duration.labels(hook.adapter, hook.phase, hook.outcome).observe(hook.seconds)
            if hook.outcome in FAILURE_DECISIONS:
                self.hook_failures.labels(hook.adapter, hook.phase).inc()
            if hook.warnings:
                self.hook_warnings.labels(hook.adapter, hook.phase).inc(len(hook.warnings))

    def reloaded(self, ok: bool, generation: int) -> None:
        self.reloads.labels("ok" if ok else "failed").inc()
        self.generation.set(generation)

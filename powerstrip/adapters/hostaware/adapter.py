"""The built-in ``hostaware`` adapter: rules on this host's metrics, and the create pre-hook they refuse with.

adapters.yml::

    endpoints:
      "POST /*/containers/create":
        pre: [hostaware]
    adapters:
      hostaware: builtin:hostaware

While a ``refuse-create`` rule holds on this host, ``POST /containers/create`` is answered 503
with ``{"message": ...}`` naming the rule, the metric and its value, and in a cluster the members
whose metric is under the threshold. The pre-hook does no I/O: it reads the monitor's state.
The adapter also registers its views (``/hosts``, ``/messages``) and gauges on the metrics listener.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from powerstrip.adapters import BuiltinContext
from powerstrip.adapters.hostaware.actions import Actions
from powerstrip.adapters.hostaware.model import HostRecord, Rule, RuleStatus
from powerstrip.adapters.hostaware.monitor import Monitor
from powerstrip.adapters.hostaware.qos_action import QosAction
from powerstrip.adapters.hostaware.sources import MetricsSourceSettings, open_source
from powerstrip.adapters.hostaware.store import host_name, open_store
from powerstrip.adapters.net.cluster import ClusterSettings
from powerstrip.adapters.net.docker_api import DockerAPI
from powerstrip.adapters.qos.service import open_qos
from powerstrip.hooks.model import ClientRequest, HookRejected, ServerResponse
from powerstrip.http.paths import normalize_path
from powerstrip.observability.extensions import EXTENSIONS, View

_CREATE = re.compile(r"(?:/v[0-9.]+)?/containers/create")
MESSAGES_LIMIT = 1000


def create_adapter(context: BuiltinContext) -> HostAwareAdapter:
    cluster = context.setting(ClusterSettings)  # the net adapter's: rules and metrics shared in its etcd
    source = context.setting(MetricsSourceSettings) or MetricsSourceSettings()
    host = host_name(cluster)
    store = open_store(context.state_dir, cluster, host)
    qos = QosAction(host, functools.partial(open_qos, context.docker_url, context.state_dir, cluster))
    monitor = Monitor(host, open_source(source.url, host), store,
                      Actions(DockerAPI(context.docker_url), host, qos), EXTENSIONS.audit)
    adapter = HostAwareAdapter(context.name or "hostaware", monitor)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return adapter  # no loop yet: the monitor starts with the first hook
    adapter.start()
    return adapter


class HostAwareAdapter:
    supports_dry_run = True  # the pre-hook only reads state

    def __init__(self, name: str, monitor: Monitor) -> None:
        self.name = name
        self.monitor = monitor
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the monitor and show the views and gauges (idempotent); needs a running event loop."""
        if self._task is None:
            self._task = asyncio.ensure_future(self.monitor.run())
            EXTENSIONS.add(self)

    async def pre_hook(self, request: ClientRequest) -> ClientRequest:
        self.start()
        if request.method == "POST" and _CREATE.fullmatch(normalize_path(request.request)):
            refusing = self.monitor.refusing()
            if refusing:
                raise HookRejected(503, self.refusal(refusing))
        return request

    async def post_hook(self, request: ClientRequest, response: ServerResponse) -> ServerResponse:
        return response

    def refusal(self, rules: list[Rule]) -> str:
        states = self.monitor.evaluator.states()
        held = "; ".join(f"rule {r.name} holds: {r.metric} = {_value(states[r.name].value)} {r.op} {r.threshold:g}"
                         for r in rules if r.name in states)
        text = f"host {self.monitor.host} refuses new containers now ({held})"
        if self.monitor.members and any(m.name != self.monitor.host for m in self.monitor.members):
            under = self.members_under(rules)
            text += "; members under the threshold: " + (", ".join(under) if under else "none")
        return text

    def members_under(self, rules: list[Rule]) -> list[str]:
        """The other live members for which none of ``rules`` is met, with their values."""
        found = []
        for member in self.monitor.members:
            if member.name == self.monitor.host or member.lost:
                continue
            values = [(r, member.metrics.get(r.metric)) for r in rules]
            if all(v is not None and not r.met(v) for r, v in values):
                found.append(f"{member.name} (" + ", ".join(f"{r.metric} = {_value(v)}" for r, v in values) + ")")
        return found

    async def close(self) -> None:
        EXTENSIONS.remove(self)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.monitor.actions.close()
        await self.monitor.actions.docker.close()
        self.monitor.store.close()

    # the metrics listener's views and gauges (observability.extensions.Extension)

    def views(self) -> Mapping[str, View]:
        return {"hosts": self._hosts_view, "messages": self._messages_view}

    async def _hosts_view(self, query: Mapping[str, str]) -> Any:
        return {"hosts": [record.document() for record in self._records()]}

    async def _messages_view(self, query: Mapping[str, str]) -> Any:
        try:
            after = int(query.get("after", "0"))
            limit = min(int(query.get("limit", str(MESSAGES_LIMIT))), MESSAGES_LIMIT)
        except ValueError:
            raise ValueError("after and limit are whole numbers") from None
        found = await asyncio.to_thread(self.monitor.store.messages, after, query.get("host"), limit)
        return {"messages": [message.document() for message in found]}

    def _records(self) -> list[HostRecord]:
        """Every member as last read, with this host's record fresh from the monitor."""
        others = [m for m in self.monitor.members if m.name != self.monitor.host]
        return sorted([self.monitor.record(), *others], key=lambda r: r.name)

    def metric_families(self) -> Iterable[Metric]:
        records = self._records()
        values = GaugeMetricFamily("powerstrip_host_metric", "A monitored host's metric (Ganglia name and unit), "
                                   "as last read.", labels=["host", "metric"])
        up = GaugeMetricFamily("powerstrip_host_up", "1 while the host publishes its metrics, 0 when it is lost "
                               "(lease expired) or its source fails.", labels=["host"])
        met = GaugeMetricFamily("powerstrip_rule_met", "1 while the rule holds on the host (its action is on).",
                                labels=["host", "rule"])
        streak = GaugeMetricFamily("powerstrip_rule_streak", "Polls in a row that met the rule's condition.",
                                   labels=["host", "rule"])
        for record in records:
            up.add_metric([record.name], 0.0 if record.lost or record.error else 1.0)
            if record.lost:
                continue
            for metric, value in sorted(record.metrics.items()):
                values.add_metric([record.name, metric], value)
            for rule, state in record.rules.items():
                met.add_metric([record.name, rule], 1.0 if state.status is RuleStatus.MET else 0.0)
                streak.add_metric([record.name, rule], float(state.count))
        return [values, up, met, streak]


def _value(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"

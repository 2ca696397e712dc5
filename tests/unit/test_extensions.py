"""What adapters register on the metrics listener and the audit log (observability.extensions)."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily

from powerstrip.observability.extensions import Extensions
from powerstrip.observability.metrics import Metrics


class Fake:
    def __init__(self, name: str, value: float) -> None:
        self.name = name
        self.value = value

    def views(self):
        async def view(query):
            return {"from": self.name}
        return {"hosts": view}

    def metric_families(self):
        family = GaugeMetricFamily("powerstrip_test_value", "test", labels=["who"])
        family.add_metric([self.name], self.value)
        return [family]


def test_the_newest_extension_answers_and_removed_ones_are_gone():
    ext = Extensions()
    old, new = Fake("old", 1), Fake("new", 2)
    ext.add(old)
    ext.add(new)
    assert ext.view("hosts") is not None and ext.view("nothing") is None
    assert [f.samples[0].labels["who"] for f in ext.collect()] == ["new"]  # one family per name
    ext.remove(new)
    assert [f.samples[0].labels["who"] for f in ext.collect()] == ["old"]
    ext.remove(old)
    assert ext.view("hosts") is None and list(ext.collect()) == []


def test_gauges_are_scraped_with_the_gateways_own():
    ext = Extensions()
    metrics = Metrics(lambda: 0, lambda: 0, ext)
    assert b"powerstrip_test_value" not in generate_latest(metrics.registry)
    ext.add(Fake("a", 3))
    assert b'powerstrip_test_value{who="a"} 3.0' in generate_latest(metrics.registry)


def test_a_failing_audit_sink_breaks_nothing():
    ext = Extensions()
    seen = []

    def broken(entry):
        raise OSError("disk full")

    ext.add_audit_sink(broken)
    ext.add_audit_sink(seen.append)
    ext.audit({"event": "x"})
    assert seen == [{"event": "x"}]

"""``BuiltinContext``: each built-in adapter finds its own settings by their type."""

from __future__ import annotations

from pathlib import Path

import pytest

from powerstrip.adapters import BuiltinContext
from powerstrip.adapters.hostaware.sources import MetricsSourceSettings
from powerstrip.adapters.net.cluster import ClusterSettings

CLUSTER = ClusterSettings(endpoints=(("127.0.0.1", 2379),), advertise="198.18.0.2")


def test_an_adapter_gets_its_settings_by_type_and_none_without_them() -> None:
    context = BuiltinContext("net", "unix:///d.sock", Path("s"), settings=(CLUSTER, MetricsSourceSettings(None)))
    assert context.setting(ClusterSettings) is CLUSTER
    assert context.setting(MetricsSourceSettings) == MetricsSourceSettings(None)
    assert BuiltinContext("net", "unix:///d.sock", Path("s")).setting(ClusterSettings) is None


def test_two_settings_of_one_type_are_refused() -> None:
    with pytest.raises(ValueError, match="two settings of one type"):
        BuiltinContext("net", "unix:///d.sock", Path("s"), settings=(CLUSTER, CLUSTER))


def test_a_metrics_source_is_checked_when_made() -> None:
    from powerstrip.adapters.hostaware.model import InvalidRule

    assert MetricsSourceSettings("gmond://127.0.0.1").url == "gmond://127.0.0.1"
    with pytest.raises(InvalidRule, match="expected builtin or gmond://HOST"):
        MetricsSourceSettings("http://127.0.0.1")

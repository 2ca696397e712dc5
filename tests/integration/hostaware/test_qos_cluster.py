"""The qos:<policy JSON> action across two simulated hosts (harness/multihost.py, real etcd, VXLAN):
a rule met on host A limits A's containers only, though cluster policies apply on every member, until A's load falls back.

As in test_cluster.py, host A reads a gmond that serves a fixed XML document saying it is busy (a
fake, for what one machine cannot produce: two hosts with different loads); host B uses the built-in
collector (this machine's real load, well under the threshold set from it). The rule names no host:
both members evaluate it, only A meets it. Rates are what the receiving iperf3 counted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator

import psutil
import pytest

from harness.multihost import Cluster, SimHost
from harness.qos import Iperf, ensure_tools, in_netns
from harness.util import wait_until
from powerstrip.adapters.hostaware.qos_action import policy_name

from .test_cluster import gmond_xml, messages
from .test_rules import EXAMPLE, Garbage

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if os.environ.get("POWERSTRIP_SKIP_DOCKER"):
        pytest.skip("POWERSTRIP_SKIP_DOCKER is set")
    ensure_tools()
    made = Cluster(2).start()
    try:
        yield made
    finally:
        for host in made.hosts:
            if host.gateway is not None:
                print(f"\n===== {host.name} powerstrip log tail =====\n{host.gateway.log_tail(40)}")
        made.stop()
    left = made.leftovers()
    assert not left, f"the multi-host harness left behind: {left}"


@pytest.fixture
def iperf() -> Iterator[Iperf]:
    runner = Iperf()
    try:
        yield runner
    finally:
        runner.stop()


def run(host: SimHost, name: str) -> tuple[str, str]:
    """A container on network ``haq`` on ``host``: its address and network namespace path."""
    host.docker("run", "-d", "--name", name, "-e", "SP_NETWORK=haq", "ubuntu", "sleep", "600")
    pid = host.docker("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
    out = host.docker("exec", name, "ip", "-4", "-o", "addr", "show", "eth0").stdout
    return re.search(r"inet (\S+)/", out)[1], f"/proc/{pid}/ns/net"


def shaped(ns: str) -> bool:
    out = subprocess.run(in_netns(ns, "tc", "qdisc", "show", "dev", "eth0"), capture_output=True, text=True, timeout=10)
    return "htb 5053:" in out.stdout


def test_a_qos_rule_met_on_host_a_limits_as_containers_only(cluster: Cluster, iperf: Iperf) -> None:
    a, b = cluster.hosts
    threshold = round(psutil.getloadavg()[0] + 4, 1)
    busy = Garbage(gmond_xml(a.address, threshold + 2), host=cluster.underlay.gateway)
    try:
        a.start_powerstrip("--metrics-source", f"gmond://{cluster.underlay.gateway}:{busy.port}", config=EXAMPLE)
        b.start_powerstrip(config=EXAMPLE)
        a.powerstrip("network", "create", "haq", "10.0.8.0/24")
        a1, ns_a1 = run(a, "a1")
        b1, ns_b1 = run(b, "b1")
        wait_until(lambda: a.docker("exec", "a1", "ping", "-c", "1", "-W", "1", b1, check=False).returncode == 0,
                   20, 0.5, "a1 (host A) to reach b1 (host B) over VXLAN")

        rule = {"name": "busy", "metric": "load_one", "op": ">", "threshold": threshold, "polling": 1, "times": 2,
                "action": 'qos:{"rate": "2mbit"}'}
        b.powerstrip("rules", "add", json.dumps(rule))  # added on B, no "host": every member evaluates it
        name = policy_name("busy", a.address)
        wait_until(lambda: any(m["level"] == "INFO" and f"QoS policy {name} applied to a1" in m["text"]
                               for m in messages(b)), 20, 0.5, "the qos: action on A")
        (met,) = [m for m in messages(b) if m["level"] == "THRESHOLD_MET"]
        assert met["host"] == a.address  # B's load is under the threshold: B never acts
        listed = b.powerstrip("qos", "list").stdout.splitlines()[1:]
        (row,) = listed
        assert re.fullmatch(rf"{re.escape(name)}\s+any\s+rate=2mbit\s+a1 \(container, {re.escape(a.address)}\)"
                            rf"\s+applied\s+rule busy on {re.escape(a.address)}", row), row
        assert shaped(ns_a1) and not shaped(ns_b1)
        limited = iperf.mbits(ns_a1, ns_b1, b1)
        assert 1.6 <= limited <= 2.4, f"a1 (A) -> b1 (B) while the rule holds on A: {limited:.2f} Mbit/s"
        other = iperf.mbits(ns_b1, ns_a1, a1)
        assert other >= 20 * limited, f"b1 (B) -> a1 (A), B's container unlimited: {other:.1f} Mbit/s"

        busy.answer = gmond_xml(a.address, round(threshold - 2, 1))  # A's load falls back under the threshold
        wait_until(lambda: any(m["level"] == "CLEARED" and m["host"] == a.address for m in messages(b)), 15, 0.5,
                   "CLEARED on A")
        (cleared,) = [m for m in messages(b) if m["level"] == "CLEARED"]
        assert "no longer > " in cleared["text"] and cleared["value"] == round(threshold - 2, 1)
        wait_until(lambda: not shaped(ns_a1), 10, 0.2, "the limit gone from a1")
        assert b.powerstrip("qos", "list").stdout.splitlines()[1:] == []
        restored = iperf.mbits(ns_a1, ns_b1, b1)
        assert restored >= 20 * limited, f"a1 -> b1 after the rule cleared: {restored:.1f} Mbit/s"
        print(f"\nMbit/s: a1 (A) -> b1 (B) while held on A {limited:.2f}, b1 -> a1 {other:.1f}, "
              f"a1 -> b1 cleared {restored:.1f}")
        b.powerstrip("rules", "delete", "busy")
        for host, container in ((a, "a1"), (b, "b1")):
            host.docker("rm", "-f", container)
    finally:
        busy.close()

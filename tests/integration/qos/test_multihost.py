"""QoS on a VXLAN network across two simulated hosts (netns + dockerd + powerstrip --cluster, real etcd):
a policy added on one host limits a container on the other, marks show on the VXLAN device, and a
delete anywhere restores the rate. The tests share the hosts and run in order."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from harness.gateway import Gateway
from harness.multihost import Cluster, SimHost
from harness.qos import CONFIG, Iperf, ensure_tools, in_netns
from harness.util import wait_until
from powerstrip.adapters.net.overlay import vxlan_name

pytestmark = [pytest.mark.docker, pytest.mark.timeout(400)]

BOUND = 6.0  # the converger's documented bound (2 s + a pass), with room for a busy machine


def start_powerstrip(host: SimHost) -> None:
    """``SimHost.start_powerstrip`` with the net + qos configuration."""
    command = ["nsenter", f"--net=/var/run/netns/{host.netns}", sys.executable, "-m", "powerstrip"]
    host.gateway = Gateway(host.dockerd.url, config=CONFIG, command=command,
                           extra_args=["--cluster", host.cluster_url], start_timeout=60.0)
    try:
        host.gateway.start()
    finally:
        if host.gateway.dir:
            host.dirs.append(host.gateway.dir)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if os.environ.get("POWERSTRIP_SKIP_DOCKER"):
        pytest.skip("POWERSTRIP_SKIP_DOCKER is set")
    ensure_tools()
    made = Cluster(2).start()
    try:
        for host in made.hosts:
            start_powerstrip(host)
        yield made
    finally:
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


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))
    if failed and "cluster" in request.fixturenames:
        for host in request.getfixturevalue("cluster").hosts:
            if host.gateway is not None:
                print(f"\n===== {host.name} powerstrip log tail =====\n{host.gateway.log_tail(60)}")


def run(host: SimHost, name: str) -> tuple[str, str]:
    """A container on network ``qos`` on ``host``: its address and network namespace path."""
    host.docker("run", "-d", "--name", name, "-e", "SP_NETWORK=qos", "ubuntu", "sleep", "600")
    pid = host.docker("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
    out = host.docker("exec", name, "ip", "-4", "-o", "addr", "show", "eth0").stdout
    return re.search(r"inet (\S+)/", out)[1], f"/proc/{pid}/ns/net"


def shaped(ns: str) -> bool:
    out = subprocess.run(in_netns(ns, "tc", "qdisc", "show", "dev", "eth0"), capture_output=True, text=True, timeout=10)
    return "htb 5053:" in out.stdout


def test_policy_added_on_one_host_limits_a_container_on_the_other(cluster: Cluster, iperf: Iperf) -> None:
    h1, h2 = cluster.hosts
    h1.powerstrip("network", "create", "qos", "10.0.7.0/24")
    a1, m1 = run(h1, "m1")
    a2, m2 = run(h2, "m2")
    _, m3 = run(h1, "m3")
    wait_until(lambda: h1.docker("exec", "m1", "ping", "-c", "1", "-W", "1", a2, check=False).returncode == 0,
               20, 0.5, "m1 (host1) to reach m2 (host2) over VXLAN")
    h2.powerstrip("qos", "add", "policy", json.dumps({"name": "limit-m1", "ip-src": a1, "rate": "2mbit"}))
    wait_until(lambda: shaped(m1), BOUND, 0.2, "host1's converger to apply a policy added on host2")
    listed = h2.powerstrip("qos", "list").stdout
    assert re.search(rf"^limit-m1\s+ip-src={a1}\s+rate=2mbit\s+m1 \(container, {h1.address}\)\s+applied\s+-$", listed, re.M), listed

    limited = iperf.mbits(m1, m2, a2)
    assert 1.6 <= limited <= 2.4, f"m1 -> m2 across hosts under 2mbit: {limited:.2f} Mbit/s"
    reverse = iperf.mbits(m1, m2, a2, reverse=True)
    assert reverse >= 20 * limited, f"m2 -> m1 across hosts (unlimited): {reverse:.1f} Mbit/s"
    other = iperf.mbits(m3, m2, a2)
    assert other >= 20 * limited, f"m3 (host1) -> m2 (host2), unlimited: {other:.1f} Mbit/s"

    h1.powerstrip("qos", "delete", "limit-m1")
    assert not shaped(m1)
    restored = iperf.mbits(m1, m2, a2)
    assert restored >= 20 * limited, f"m1 -> m2 after the delete: {restored:.1f} Mbit/s"


def test_dscp_mark_is_visible_on_the_vxlan_device(cluster: Cluster) -> None:
    h1, h2 = cluster.hosts
    a2 = h2.docker("exec", "m2", "ip", "-4", "-o", "addr", "show", "eth0").stdout.split("inet ")[1].split("/")[0]
    m1 = f"/proc/{h1.docker('inspect', '-f', '{{.State.Pid}}', 'm1').stdout.strip()}/ns/net"
    vni = int(re.search(r"VNI:\s+(\d+)", h1.powerstrip("network", "info", "qos").stdout)[1])
    h2.powerstrip("qos", "add", "policy", json.dumps(
        {"name": "voice", "ip-dst": "10.0.7.0/24", "protocol": "udp", "tp-dst": 5060, "dscp": "EF"}))
    chain = lambda: subprocess.run(in_netns(m1, "iptables", "-t", "mangle", "-S", "PS-QOS"),  # noqa: E731
                                   capture_output=True, timeout=10).returncode == 0
    wait_until(chain, BOUND, 0.2, "host1 to mark m1's voice traffic")
    dump = subprocess.Popen(["nsenter", f"--net=/var/run/netns/{h2.netns}", "tcpdump", "-i", vxlan_name(vni), "-n",
                             "-v", "-l", "-c", "2", "udp and (dst port 5060 or dst port 5061)"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        time.sleep(1.0)  # tcpdump attaches
        send = ("import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
                f"s.sendto(b'voice', ('{a2}', 5060)); s.sendto(b'other', ('{a2}', 5061))")
        subprocess.run(in_netns(m1, sys.executable, "-c", send), check=True, timeout=10)
        out, err = dump.communicate(timeout=10)
    finally:
        dump.kill()
        dump.wait(5)
    assert len([l for l in out.splitlines() if "tos 0xb8" in l]) == 1, out + err  # EF arrived on host2, marked
    assert len([l for l in out.splitlines() if "tos 0x0," in l]) == 1, out + err
    h2.powerstrip("qos", "delete", "voice")
    wait_until(lambda: not chain(), BOUND, 0.2, "host1 to remove the marks of a policy deleted on host2")

"""Multi-host networks end to end: simulated hosts (netns + dockerd + powerstrip --cluster), a real
etcd, the docker CLI and the Docker SDK as clients. The tests share the hosts and run in order:
later tests use the containers of earlier ones (that is the point of restarts: what existed keeps
working)."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address

import docker
import pytest

from powerstrip.adapters.net.overlay import ZERO_MAC, vxlan_name
from tests.harness.multihost import Cluster, SimHost
from tests.harness.util import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

LOOP = ["/bin/sh", "-c", "while true; do sleep 1; done"]


def address_of(host: SimHost, name: str) -> IPv4Address:
    out = host.docker("exec", name, "ip", "-4", "-o", "addr", "show", "eth0").stdout
    return IPv4Address(re.search(r"inet (\S+)/", out)[1])


def pings(host: SimHost, name: str, address: object, wait: int = 2) -> bool:
    return host.docker("exec", name, "ping", "-c", "1", "-W", str(wait), str(address), check=False).returncode == 0


def run(host: SimHost, name: str, *env: str) -> IPv4Address:
    host.docker("create", "--name", name, *[a for e in env for a in ("-e", e)], "ubuntu", *LOOP)
    host.docker("start", name)
    return address_of(host, name)


def vni_of(host: SimHost, network: str) -> int:
    return int(re.search(r"VNI:\s+(\d+)", host.powerstrip("network", "info", network).stdout)[1])


def tunnel_peers(host: SimHost, vni: int) -> set[str]:
    """The hosts the VXLAN device of ``vni`` floods to (its all-zeros FDB entries)."""
    out = host.ns("bridge", "fdb", "show", "dev", vxlan_name(vni)).stdout
    return {line.split(" dst ")[1].split()[0] for line in out.splitlines() if line.startswith(ZERO_MAC) and " dst " in line}


def test_seed_scenario_across_hosts(cluster: Cluster) -> None:
    h1, h2, _ = cluster.hosts
    a1 = run(h1, "powerstrip-test1", "SOCKETPLANE_CIDR=10.0.6.1/24")
    a2 = run(h2, "powerstrip-test2", "SOCKETPLANE_CIDR=10.0.6.1/24")
    assert {a1, a2} == {IPv4Address("10.0.6.2"), IPv4Address("10.0.6.3")}  # one range, allocated cluster-wide
    ifconfig = h2.docker("exec", "powerstrip-test2", "ifconfig", "eth0").stdout
    assert f"inet addr:{a2}" in ifconfig and "MTU:1450" in ifconfig
    wait_until(lambda: pings(h2, "powerstrip-test2", a1), 20, 0.5, "host2's container to answer host1's")
    assert pings(h1, "powerstrip-test1", a2)
    # The anycast gateway answers on both hosts, with the same MAC (no confusion across the tunnel).
    assert pings(h1, "powerstrip-test1", "10.0.6.1") and pings(h2, "powerstrip-test2", "10.0.6.1")
    macs = {h.docker("exec", n, "ip", "neigh", "show", "10.0.6.1").stdout.split("lladdr ")[1].split()[0]
            for h, n in ((h1, "powerstrip-test1"), (h2, "powerstrip-test2"))}
    assert macs == {"02:50:0a:00:06:01"}


def test_network_created_once_exists_everywhere(cluster: Cluster) -> None:
    h1, h2, _ = cluster.hosts
    assert h1.powerstrip("network", "create", "web", "10.6.0.0/16").stdout.strip() == "web"
    assert re.search(r"^web\s+10\.6\.0\.0/16\s+10\.6\.0\.1\s+0$", h2.powerstrip("network", "list").stdout, re.M)
    w1 = run(h1, "web1", "SP_NETWORK=web")
    w2 = run(h2, "web2", "SP_NETWORK=web")
    wait_until(lambda: pings(h1, "web1", w2), 20, 0.5, "web1 (host1) to reach web2 (host2)")
    assert pings(h2, "web2", w1)
    info = h1.powerstrip("network", "info", "web").stdout
    assert re.search(rf"^web2\s+{w2}\s+{h2.address}\s", info, re.M), info


def test_isolation_across_networks(cluster: Cluster) -> None:
    h1, h2, _ = cluster.hosts
    h2.powerstrip("network", "create", "db", "10.7.0.0/16")
    assert vni_of(h1, "db") != vni_of(h1, "web")
    d1 = run(h1, "db1", "SP_NETWORK=db")
    d2 = run(h2, "db2", "SP_NETWORK=db")
    wait_until(lambda: pings(h1, "db1", d2), 20, 0.5, "db1 to reach db2 (the same network across hosts)")
    w1, w2 = address_of(h1, "web1"), address_of(h2, "web2")
    assert not pings(h1, "web1", d1, wait=1), "web → db on the same host"
    assert not pings(h1, "web1", d2, wait=1), "web → db across hosts"
    assert not pings(h2, "db2", w1, wait=1), "db → web across hosts"
    assert not pings(h2, "db2", w2, wait=1), "db → web on the same host"
    assert pings(h2, "web2", w1)  # the checks above failed for isolation, not for a broken overlay

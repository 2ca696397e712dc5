"""Lost hosts and half-done deletes, on three simulated hosts with a real etcd and a short grace period
(``--lost-host-grace 5``): a host whose powerstrip dies keeps its addresses for the grace period, then
a surviving host reclaims them; when it returns, its surviving containers take back their addresses
where still free and get new ones where not — never a duplicate. A network delete cut short between
its two steps is finished, or rolled back, by the next converger pass."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest

from harness.multihost import Cluster, SimHost
from harness.util import wait_until
from powerstrip.adapters.net.etcd_client import Etcd, put
from powerstrip.adapters.net.etcd_store import NETWORKS
from powerstrip.adapters.net.overlay import ZERO_MAC, vxlan_name

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

LOOP = ["/bin/sh", "-c", "while true; do sleep 1; done"]
GRACE = ("--lost-host-grace", "5")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if os.environ.get("POWERSTRIP_SKIP_DOCKER"):
        pytest.skip("POWERSTRIP_SKIP_DOCKER is set")
    made = Cluster(3).start()
    try:
        for host in made.hosts:
            host.start_powerstrip(*GRACE)
        yield made
    finally:
        made.stop()
    left = made.leftovers()
    assert not left, f"the multi-host harness left behind: {left}"


def address_of(host: SimHost, name: str) -> IPv4Address:
    out = host.docker("exec", name, "ip", "-4", "-o", "addr", "show", "eth0").stdout
    return IPv4Address(re.search(r"inet (\S+)/", out)[1])


def interface_addresses(host: SimHost, name: str) -> set[IPv4Address]:
    """Every IPv4 address in the container but loopback (a re-connected interface is eth1, not eth0)."""
    out = host.docker("exec", name, "ip", "-4", "-o", "addr", "show").stdout
    return {IPv4Address(a) for a in re.findall(r"inet (\S+)/", out)} - {IPv4Address("127.0.0.1")}


def run(host: SimHost, name: str, network: str) -> IPv4Address:
    host.docker("create", "--name", name, "-e", f"SP_NETWORK={network}", "ubuntu", *LOOP)
    host.docker("start", name)
    return address_of(host, name)


def pings(host: SimHost, name: str, address: object) -> bool:
    return host.docker("exec", name, "ping", "-c", "1", "-W", "2", str(address), check=False).returncode == 0


def rows(host: SimHost, network: str) -> dict[str, tuple[IPv4Address, str]]:
    """``network info``: container → (address, host)."""
    out = host.powerstrip("network", "info", network).stdout.split("\n\n", 1)[1]
    return {r.split()[0]: (IPv4Address(r.split()[1]), r.split()[2]) for r in out.splitlines()[1:] if r.strip()}


def tunnel_peers(host: SimHost, vni: int) -> set[str]:
    out = host.ns("bridge", "fdb", "show", "dev", vxlan_name(vni)).stdout
    return {line.split(" dst ")[1].split()[0] for line in out.splitlines() if line.startswith(ZERO_MAC) and " dst " in line}


def test_lost_host_reclaimed_then_returns_without_duplicates(cluster: Cluster) -> None:
    h1, h2, h3 = cluster.hosts
    h1.powerstrip("network", "create", "lh", "10.40.0.0/24")
    vni = int(re.search(r"VNI:\s+(\d+)", h1.powerstrip("network", "info", "lh").stdout)[1])
    gone_a, gone_b = run(h3, "gone-a", "lh"), run(h3, "gone-b", "lh")
    keep1, keep2 = run(h1, "keep1", "lh"), run(h2, "keep2", "lh")
    wait_until(lambda: pings(h1, "keep1", gone_a), 20, 0.5, "keep1 (host1) to reach gone-a (host3)")

    h3.stop_powerstrip(kill=True)  # no goodbye; its containers go on running
    lost_at = time.monotonic()
    wait_until(lambda: all(host != h3.address for _, host in rows(h1, "lh").values()), 60, 0.5,
               "host3's addresses to be reclaimed")
    reclaimed_after = time.monotonic() - lost_at
    # what was left of the lease (10 s, renewed every 3.3 s: at least 6.7 s) + grace (5 s) + a converger pass
    # or two: never before the grace has passed, nor much after
    assert 11 <= reclaimed_after <= 40, reclaimed_after
    assert re.search(rf"reclaimed 2 address\(es\) of host {re.escape(h3.address)}",
                     h1.gateway.log_text() + h2.gateway.log_text())
    assert tunnel_peers(h1, vni) == {h2.address} and tunnel_peers(h2, vni) == {h1.address}
    newcomer = run(h1, "newcomer", "lh")  # the lowest free address: the one gone-a had
    assert newcomer == gone_a

    h3.start_powerstrip(*GRACE)
    wait_until(lambda: {"gone-a", "gone-b"} <= set(rows(h1, "lh")), 30, 0.5, "host3's containers to be recorded again")
    listed = rows(h1, "lh")
    addresses = [address for address, _ in listed.values()]
    assert len(addresses) == len(set(addresses)) == 5, listed  # never a duplicate
    assert listed["gone-b"] == (gone_b, h3.address)  # still free: its own address back
    moved = listed["gone-a"][0]
    assert moved not in (gone_a, gone_b, keep1, keep2) and listed["newcomer"][0] == gone_a
    wait_until(lambda: interface_addresses(h3, "gone-a") == {moved}, 10, 0.5, "gone-a to have its new address only")
    log = h3.gateway.log_text()
    assert f"container gone-b got its address {gone_b} on lh back" in log, log[-3000:]
    assert f"container gone-a on lh now has the address {moved}" in log, log[-3000:]
    # and everything reaches everything, on the addresses the store has
    wait_until(lambda: pings(h1, "keep1", moved), 20, 0.5, "keep1 to reach gone-a at its new address")
    assert pings(h1, "keep1", gone_b) and pings(h2, "keep2", newcomer) and pings(h3, "gone-a", keep2)
    assert tunnel_peers(h1, vni) == {h2.address, h3.address}


def _mark_deleting(cluster: Cluster, name: str) -> None:
    """The state a deleter leaves when it dies between its two steps (mark, then delete): written here
    directly, as no process can be killed at exactly that point."""
    assert cluster.etcd is not None
    etcd = Etcd(((cluster.etcd.host, cluster.etcd.port),))
    kv = etcd.get(NETWORKS + name)
    assert kv is not None
    record = {**json.loads(kv.value), "deleting": True, "deleting_since": time.time() - 60}
    assert etcd.txn([], [put(NETWORKS + name, json.dumps(record))])


def test_interrupted_network_delete_is_finished_or_rolled_back(cluster: Cluster) -> None:
    h1, h2, _ = cluster.hosts
    h1.powerstrip("network", "create", "half", "10.41.0.0/24")
    assert "ps-half" in h1.dockerd_networks()
    _mark_deleting(cluster, "half")
    wait_until(lambda: not re.search(r"^half\s", h2.powerstrip("network", "list").stdout, re.M), 20, 0.5,
               "the half-deleted network to be deleted")
    wait_until(lambda: "ps-half" not in h1.dockerd_networks(), 20, 0.5, "its bridge to go")

    h1.powerstrip("network", "create", "busy", "10.42.0.0/24")
    run(h2, "busy1", "busy")
    _mark_deleting(cluster, "busy")
    wait_until(lambda: h2.docker("create", "--name", "busy2", "-e", "SP_NETWORK=busy", "ubuntu", *LOOP,
                                 check=False).returncode == 0, 20, 0.5, "the mark of a network in use to be taken away")
    assert "busy1" in rows(h1, "busy")
    assert re.search(r"network busy was left half-deleted .*: delete rolled back",
                     h1.gateway.log_text() + h2.gateway.log_text() + cluster.hosts[2].gateway.log_text())

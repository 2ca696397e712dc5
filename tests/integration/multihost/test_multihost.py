"""Multi-host networks end to end: simulated hosts (netns + dockerd + powerstrip --cluster), a real
etcd, the docker CLI and the Docker SDK as clients. The tests share the hosts and run in order:
later tests use the containers of earlier ones (that is the point of restarts: what existed keeps
working)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address

import docker
import pytest

from harness.multihost import Cluster, SimHost
from harness.util import wait_until
from powerstrip.adapters.net.overlay import ZERO_MAC, vxlan_name

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
    # Deleted on one host, gone on all: the other host's Docker network and VXLAN device go too.
    db = vni_of(h1, "db")
    h1.docker("rm", "-f", "db1")
    h2.docker("rm", "-f", "db2")
    assert h1.powerstrip("network", "delete", "db").stdout.strip() == "db"
    wait_until(lambda: "ps-db" not in h2.dockerd_networks() and vxlan_name(db) not in h2.ns("ip", "link").stdout,
               10, 0.2, "host2's bridge and VXLAN device of the deleted network to go")


def members(host: SimHost) -> dict[str, str]:
    """``powerstrip cluster members``: underlay address → health."""
    rows = host.powerstrip("cluster", "members").stdout.splitlines()[1:]
    return {row.split()[0]: row.split()[1] for row in rows}


def test_host_joins_and_leaves(cluster: Cluster) -> None:
    h1, h2, h3 = cluster.hosts
    web = vni_of(h1, "web")
    assert set(members(h1)) == {h1.address, h2.address}
    assert tunnel_peers(h1, web) == {h2.address}
    h3.start_powerstrip()
    wait_until(lambda: set(members(h1)) == {h1.address, h2.address, h3.address}, 10, 0.2, "host3 listed as a member")
    assert members(h1)[h3.address] == "healthy"
    w3 = run(h3, "web3", "SP_NETWORK=web")
    w1 = address_of(h1, "web1")
    wait_until(lambda: pings(h3, "web3", w1), 10, 0.5, "web3 on the new host to reach web1")
    assert pings(h1, "web1", w3) and tunnel_peers(h1, web) == {h2.address, h3.address}
    # Host 3 dies (powerstrip killed, no goodbye): its lease runs out and every tunnel drops it.
    h3.stop_powerstrip(kill=True)
    wait_until(lambda: h3.address not in members(h1), 20, 0.5, "host3's lease to expire")
    wait_until(lambda: tunnel_peers(h1, web) == {h2.address} and tunnel_peers(h2, web) == {h1.address}, 10, 0.2,
               "host3 removed from the tunnels of hosts 1 and 2")
    assert not pings(h1, "web1", w3, wait=1)
    # It comes back: the same container, the same address, reachable again.
    h3.start_powerstrip()
    wait_until(lambda: pings(h1, "web1", w3), 15, 0.5, "web3 reachable after host3 rejoined")
    assert address_of(h3, "web3") == w3


def test_restart_powerstrip_keeps_addresses_and_connectivity(cluster: Cluster) -> None:
    h1, h2, _ = cluster.hosts
    web = vni_of(h1, "web")
    before = h1.powerstrip("network", "info", "web").stdout
    w1, w2 = address_of(h1, "web1"), address_of(h2, "web2")
    h2.stop_powerstrip()
    assert pings(h1, "web1", w2)  # the data path does not depend on the powerstrip process
    h2.ns("ip", "link", "del", vxlan_name(web))  # and what is lost meanwhile is rebuilt from the store
    h2.start_powerstrip()
    wait_until(lambda: pings(h2, "web2", w1), 15, 0.5, "web2 to reach web1 after the restart")
    assert address_of(h2, "web2") == w2
    assert h1.powerstrip("network", "info", "web").stdout == before
    n2 = run(h2, "web2b", "SP_NETWORK=web")
    assert n2 not in (w1, w2) and pings(h1, "web1", n2)


def test_etcd_outage(cluster: Cluster) -> None:
    h1, h2, _ = cluster.hosts
    w1, w2 = address_of(h1, "web1"), address_of(h2, "web2")
    client = docker.DockerClient(base_url=h1.gateway.url, timeout=60)
    try:
        holders = {c.name for c in client.containers.list(all=True)}
        assert cluster.etcd is not None
        cluster.etcd.kill()
        assert pings(h1, "web1", w2) and pings(h2, "web2", w1), "running containers keep working"
        refused = h1.docker("create", "--name", "during-outage", "-e", "SP_NETWORK=web", "ubuntu", *LOOP, check=False)
        assert refused.returncode != 0
        assert "cluster store" in refused.stderr and "unreachable" in refused.stderr, refused.stderr
        with pytest.raises(docker.errors.APIError) as caught:
            client.containers.create("ubuntu", LOOP, environment={"SP_NETWORK": "web"}, name="during-outage2")
        assert caught.value.status_code == 503
        assert {c.name for c in client.containers.list(all=True)} == holders, "nothing half-created"
        cluster.etcd.start()
        wait_until(lambda: h1.docker("create", "--name", "after-outage", "-e", "SP_NETWORK=web", "ubuntu", *LOOP,
                                     check=False).returncode == 0, 20, 0.5, "creates to work again")
        h1.docker("start", "after-outage")
        after = address_of(h1, "after-outage")
        wait_until(lambda: pings(h2, "web2", after), 10, 0.5, "the new container to be reachable from host2")
        assert pings(h1, "web1", w2)
    finally:
        client.close()


def test_concurrent_creates_on_three_hosts(cluster: Cluster) -> None:
    hosts = cluster.hosts
    if hosts[2].gateway is None:
        hosts[2].start_powerstrip()
    hosts[0].powerstrip("network", "create", "big", "10.8.0.0/16")
    clients = [docker.DockerClient(base_url=h.gateway.url, timeout=120) for h in hosts]

    def create(job: tuple[int, int]) -> str:
        host, number = job
        container = clients[host].containers.create("ubuntu", LOOP, environment={"SP_NETWORK": "big"},
                                                    name=f"big-{host}-{number}")
        return container.id

    try:
        jobs = [(h, n) for n in range(30) for h in range(3)]
        with ThreadPoolExecutor(24) as pool:
            created = list(pool.map(create, jobs))
        assert len(created) == 90
        rows = [line.split() for line in hosts[1].powerstrip("network", "info", "big").stdout.splitlines()
                if line.startswith("big-")]
        addresses = [row[1] for row in rows]
        assert len(addresses) == 90 and len(set(addresses)) == 90, addresses
        # What Docker was given on each host matches the store, and no address is on two hosts.
        given = []
        for client in clients:
            for holder in client.containers.list(filters={"label": "powerstrip.net.network=big"}):
                given.append(next(iter(holder.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"])
        assert sorted(given) == sorted(addresses)
    finally:
        with ThreadPoolExecutor(24) as pool:
            list(pool.map(lambda job: clients[job[0]].api.remove_container(f"big-{job[0]}-{job[1]}", force=True), jobs))
        for client in clients:
            client.close()
    assert "big-" not in hosts[0].powerstrip("network", "info", "big").stdout

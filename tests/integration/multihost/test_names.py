"""Container names across hosts, with the busybox tools in the containers: three simulated hosts, a
network with containers on each; names resolve from every host (Docker's embedded DNS answers the
same-host ones and forwards the rest to powerstrip on the gateway address), names of another network
do not, unknown names are forwarded to the upstream resolver, and a removed container stops
resolving within the documented bound. The upstream resolver is a small authoritative server made
with dnspython on the underlay (the machine has no other DNS server a test may use)."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from ipaddress import IPv4Address

import dns.message
import dns.rcode
import dns.rrset
import pytest

from harness.multihost import Cluster, SimHost
from harness.util import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

LOOP = ["/bin/sh", "-c", "while true; do sleep 1; done"]
OUTSIDE = ("outside.test.", "192.0.2.10")


class Upstream:
    """An authoritative DNS server for one name (``OUTSIDE``), NXDOMAIN for everything else."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        self.sock.settimeout(0.2)
        self.queries: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            name = query.question[0].name.to_text()
            self.queries.append(name)
            reply = dns.message.make_response(query)
            if name == OUTSIDE[0]:
                reply.answer.append(dns.rrset.from_text(name, 30, "IN", "A", OUTSIDE[1]))
            else:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(reply.to_wire(), peer)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if os.environ.get("POWERSTRIP_SKIP_DOCKER"):
        pytest.skip("POWERSTRIP_SKIP_DOCKER is set")
    made = Cluster(3).start()
    upstream = None
    try:
        upstream = Upstream(made.underlay.gateway)
        made.upstream = upstream  # type: ignore[attr-defined]
        for host in made.hosts:
            host.start_powerstrip("--dns-upstream", made.underlay.gateway)
        yield made
    finally:
        if upstream is not None:
            upstream.stop()
        made.stop()
    left = made.leftovers()
    assert not left, f"the multi-host harness left behind: {left}"


def run(host: SimHost, name: str, network: str) -> IPv4Address:
    host.docker("create", "--name", name, "-e", f"SP_NETWORK={network}", "ubuntu", *LOOP)
    host.docker("start", name)
    out = host.docker("exec", name, "ip", "-4", "-o", "addr", "show", "eth0").stdout
    return IPv4Address(re.search(r"inet (\S+)/", out)[1])


def resolve(host: SimHost, container: str, name: str) -> set[str]:
    """The addresses busybox nslookup gives for ``name`` (empty: it did not resolve)."""
    result = host.docker("exec", container, "nslookup", name, check=False, timeout=30)
    if result.returncode != 0:
        return set()
    answers = result.stdout.split(f"Name:", 1)[-1] if "Name:" in result.stdout else ""
    return set(re.findall(r"(\d+\.\d+\.\d+\.\d+)", answers))


def test_names_resolve_across_hosts(cluster: Cluster) -> None:
    h1, h2, h3 = cluster.hosts
    h1.powerstrip("network", "create", "names", "10.45.0.0/24")
    a1, a1b = run(h1, "n1", "names"), run(h1, "n1b", "names")
    a2, a3 = run(h2, "n2", "names"), run(h3, "n3", "names")
    wait_until(lambda: resolve(h1, "n1", "n2") == {str(a2)}, 20, 0.5, "n2 (host2) to resolve on host1")
    assert resolve(h1, "n1", "n3") == {str(a3)}
    assert resolve(h3, "n3", "n1") == {str(a1)} and resolve(h3, "n3", "n2") == {str(a2)}
    assert resolve(h1, "n1", "n1b") == {str(a1b)}  # the same host: Docker's own answer
    assert resolve(h2, "n2", "N1B") == {str(a1b)}  # names are case-insensitive
    assert h1.docker("exec", "n1", "ping", "-c", "1", "-W", "2", "n2", check=False).returncode == 0
    assert h3.docker("exec", "n3", "ping", "-c", "1", "-W", "2", "n1", check=False).returncode == 0


def test_other_networks_names_do_not_resolve_and_unknown_names_are_forwarded(cluster: Cluster) -> None:
    h1, h2, _ = cluster.hosts
    h1.powerstrip("network", "create", "othernet", "10.46.0.0/24")
    run(h2, "o2", "othernet")
    wait_until(lambda: resolve(h2, "o2", "o2") != set(), 20, 0.5, "o2 to resolve on its own network")
    assert resolve(h1, "n1", "o2") == set()  # on another network: not answered ...
    assert "o2." in cluster.upstream.queries  # type: ignore[attr-defined] # ... but forwarded, as Docker does
    assert resolve(h2, "n2", OUTSIDE[0].rstrip(".")) == {OUTSIDE[1]}


def test_a_removed_container_stops_resolving(cluster: Cluster) -> None:
    h1, h2, _ = cluster.hosts
    assert resolve(h1, "n1", "n2")
    h2.docker("rm", "-f", "n2")
    removed = time.monotonic()
    wait_until(lambda: resolve(h1, "n1", "n2") == set(), 20, 0.2, "n2 to stop resolving on host1")
    # the documented bound: the converger's resync (3 s) + the answers' TTL (2 s), plus the lookup itself
    assert time.monotonic() - removed < 8

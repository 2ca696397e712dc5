"""Whole gateways on a secured cluster store: two simulated hosts whose powerstrip reaches etcd over
TLS with a client certificate and a user (etcd started with --client-cert-auth and auth on; the
harness makes the certificates). Membership leases, the watch and the overlay work as on a plain
store: a network created on one host carries traffic between containers on both."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest

from harness.multihost import Cluster, SimHost
from harness.util import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

LOOP = ["/bin/sh", "-c", "while true; do sleep 1; done"]


@pytest.fixture(scope="module")
def secured() -> Iterator[Cluster]:
    if os.environ.get("POWERSTRIP_SKIP_DOCKER"):
        pytest.skip("POWERSTRIP_SKIP_DOCKER is set")
    made = Cluster(2, secure=True).start()
    try:
        for host in made.hosts:
            host.start_powerstrip()
        yield made
    finally:
        made.stop()
    left = made.leftovers()
    assert not left, f"the multi-host harness left behind: {left}"


def address_of(host: SimHost, name: str) -> IPv4Address:
    out = host.docker("exec", name, "ip", "-4", "-o", "addr", "show", "eth0").stdout
    return IPv4Address(re.search(r"inet (\S+)/", out)[1])


def test_two_hosts_over_a_tls_and_auth_store(secured: Cluster) -> None:
    h1, h2 = secured.hosts
    assert secured.etcd is not None and secured.etcd.url.startswith("etcds://")
    wait_until(lambda: {row.split()[0] for row in h1.powerstrip("cluster", "members").stdout.splitlines()[1:]}
               == {h1.address, h2.address}, 20, 0.5, "both hosts to join over TLS")
    h1.powerstrip("network", "create", "sec", "10.30.0.0/24")
    for host, name in ((h1, "sec1"), (h2, "sec2")):
        host.docker("create", "--name", name, "-e", "SP_NETWORK=sec", "ubuntu", *LOOP)
        host.docker("start", name)
    a1, a2 = address_of(h1, "sec1"), address_of(h2, "sec2")
    assert {a1, a2} == {IPv4Address("10.30.0.2"), IPv4Address("10.30.0.3")}
    wait_until(lambda: h2.docker("exec", "sec2", "ping", "-c", "1", "-W", "2", str(a1), check=False).returncode == 0,
               20, 0.5, "sec2 (host2) to reach sec1 (host1) over the overlay")
    # nothing about the store's security went wrong on the way (the gateways would have logged it)
    for host in secured.hosts:
        assert "TLS:" not in host.gateway.log_text() and "authentication" not in host.gateway.log_text()

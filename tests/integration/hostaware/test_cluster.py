"""Host-aware rules across two simulated hosts (harness/multihost.py) with a real etcd.

Both "hosts" run on one machine, so real sources would report the same load on both: host A reads
a gmond that serves a fixed XML document saying it is busy (a fake, for what one machine cannot
produce: two hosts with different loads); host B uses the built-in collector (this machine's real
load, well under the threshold set from it).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import psutil
import pytest

from harness.multihost import Cluster
from harness.util import wait_until

from .test_rules import EXAMPLE, Garbage, rule

pytestmark = pytest.mark.docker


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if os.environ.get("POWERSTRIP_SKIP_DOCKER"):
        pytest.skip("POWERSTRIP_SKIP_DOCKER is set")
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


def gmond_xml(host: str, load_one: float) -> bytes:
    return (f'<?xml version="1.0" encoding="ISO-8859-1" standalone="yes"?>\n<GANGLIA_XML VERSION="3.7.2" '
            f'SOURCE="gmond"><CLUSTER NAME="c" LOCALTIME="{int(time.time())}"><HOST NAME="{host}" IP="{host}" '
            f'REPORTED="{int(time.time())}" TN="1" TMAX="20" DMAX="0"><METRIC NAME="load_one" VAL="{load_one}" '
            'TYPE="float" UNITS=" " TN="1" TMAX="70" DMAX="0" SLOPE="both"/></HOST></CLUSTER></GANGLIA_XML>\n').encode()


def messages(host, *args: str) -> list[dict]:
    out = host.powerstrip("messages", "--json", "--tail", "1000", *args).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def hosts(host) -> dict[str, dict]:
    out = host.powerstrip("hosts", "list", "--json").stdout
    return {doc["name"]: doc for doc in map(json.loads, out.splitlines())}


def test_a_rule_on_host_a_refuses_on_a_only_and_names_b(cluster):
    a, b = cluster.hosts
    threshold = round(psutil.getloadavg()[0] + 4, 1)
    busy = Garbage(gmond_xml(a.address, threshold + 2), host=cluster.underlay.gateway)
    try:
        a.start_powerstrip("--metrics-source", f"gmond://{cluster.underlay.gateway}:{busy.port}", config=EXAMPLE)
        b.start_powerstrip(config=EXAMPLE)
        wait_until(lambda: set(hosts(b)) == {a.address, b.address}, 20, 0.5, "both members in hosts list")
        b.powerstrip("rules", "add", json.dumps({**json.loads(rule("busy", "load_one", ">", threshold, times=2)),
                                                 "host": a.address}))
        wait_until(lambda: any(m["level"] == "THRESHOLD_MET" for m in messages(b)), 20, 0.5, "THRESHOLD_MET on A")
        (met,) = [m for m in messages(b) if m["level"] == "THRESHOLD_MET"]
        assert met["host"] == a.address and met["value"] == threshold + 2
        refused = a.docker("create", "ps-busybox:latest", "true", check=False)
        assert refused.returncode != 0
        assert "rule busy holds: load_one" in refused.stderr
        assert f"members under the threshold: {b.address} (load_one = " in refused.stderr
        b.docker("create", "ps-busybox:latest", "true")  # the rule is A's: B goes on creating
        listed = hosts(a)
        assert listed[a.address]["rules"] == {"busy": {"status": "met", "count": 2, "value": threshold + 2}}
        assert listed[b.address]["rules"] == {} and not listed[b.address]["lost"]
        assert [m["host"] for m in messages(b, "--host", a.address)] == [a.address] * len(messages(b, "--host", a.address))

        a.stop_powerstrip(kill=True)  # its lease is no longer renewed: B must show it as lost
        wait_until(lambda: hosts(b)[a.address]["lost"], 30, 1.0, "A shown as lost")
        assert "lost" in b.powerstrip("hosts", "list").stdout
        assert not hosts(b)[b.address]["lost"]
    finally:
        busy.close()

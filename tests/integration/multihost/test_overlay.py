"""``Overlay.converge`` against a real kernel, in a scratch network namespace (no dockerd needed):
the wanted state in, VXLAN devices, FDB entries and the gateway MAC out; rerun, it changes only
what differs."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

REPO_ROOT = Path(__file__).resolve().parents[3]

# Runs inside the namespace: converge to each state given on stdin, print the kernel's view after each.
_DRIVER = """
import json, subprocess, sys
from ipaddress import IPv4Address
from powerstrip.adapters.net.overlay import Overlay, Segment
for line in sys.stdin:
    step = json.loads(line)
    segments = [Segment(s["vni"], IPv4Address(s["gateway"]), frozenset(s["peers"]), s["macs"]) for s in step["segments"]]
    wired = Overlay(step["local"], step["mtu"]).converge(segments)
    fdb = subprocess.run(["bridge", "fdb", "show"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-d", "-o", "link"], capture_output=True, text=True).stdout
    print(json.dumps({"wired": wired, "fdb": fdb, "links": links}), flush=True)
"""


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"pso-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", "psbr4100", "type", "bridge"], check=True, timeout=30)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], timeout=30)


def converge(netns: str, *steps: dict) -> list[dict]:
    out = subprocess.run(["nsenter", f"--net=/var/run/netns/{netns}", sys.executable, "-c", _DRIVER],
                         input="".join(json.dumps(s) + "\n" for s in steps), capture_output=True, text=True,
                         timeout=30, cwd=REPO_ROOT, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def segment(peers: list[str], macs: dict[str, str] | None = None, vni: int = 4100) -> dict:
    return {"vni": vni, "gateway": "10.6.0.1", "peers": peers, "macs": macs or {}}


def test_converge_programs_and_reprograms_the_kernel(netns: str) -> None:
    base = {"local": "198.18.0.2", "mtu": 1450}
    first, second, third, fourth = converge(
        netns,
        {**base, "segments": [segment(["198.18.0.3", "198.18.0.4"], {"02:42:0a:06:00:05": "198.18.0.4"}),
                              segment(["198.18.0.3"], vni=4200)]},  # no bridge of its own here: not wired
        {**base, "segments": [segment(["198.18.0.3"])]},              # host .4 left
        {**base, "mtu": 1400, "segments": [segment(["198.18.0.3"])]},  # another MTU: the device is remade
        {**base, "segments": []},                                      # the network is gone
    )
    assert first["wired"] == [4100]
    assert "psvx4100" in first["links"] and "vxlan id 4100 local 198.18.0.2" in first["links"]
    assert "nolearning" in first["links"] and "dstport 4789" in first["links"] and "psvx4200" not in first["links"]
    assert "neigh_suppress on" in first["links"] and "noudpcsum" in first["links"]
    assert "link/ether 02:50:0a:06:00:01" in first["links"]  # the anycast gateway MAC on the bridge
    fdb = first["fdb"]
    assert "00:00:00:00:00:00 dev psvx4100 dst 198.18.0.3 self permanent" in fdb
    assert "00:00:00:00:00:00 dev psvx4100 dst 198.18.0.4 self permanent" in fdb
    assert "02:42:0a:06:00:05 dev psvx4100 dst 198.18.0.4 self permanent" in fdb
    assert "dst 198.18.0.4" not in second["fdb"] and "dst 198.18.0.3" in second["fdb"]
    assert "mtu 1400" in [line for line in third["links"].splitlines() if "psvx4100" in line][0]
    assert fourth["wired"] == [] and "psvx4100" not in fourth["links"] and "psbr4100" in fourth["links"]

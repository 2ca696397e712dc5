"""Host-aware rules through the gateway, with real metrics: a real gmond (Debian ganglia-monitor on
private loopback ports) and the built-in psutil collector, driven by real CPU burners.

Thresholds are set relative to the load measured at the start, so that the tests hold on a
shared 2-core machine: the burners add about their number to load_one over the next minute and
take cpu_idle near 0 while they run.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from ipaddress import ip_network

import pytest

from harness.gateway import REPO_ROOT

from .conftest import create

pytestmark = pytest.mark.docker

EXAMPLE = REPO_ROOT / "examples" / "host-aware.yml"
ONLY_HOSTAWARE = """
version: 1
endpoints:
  "POST /*/containers/create":
    pre: [hostaware]
adapters:
  hostaware: builtin:hostaware
"""
BOUND = 3.0  # seconds beyond polling x times: the rules re-read (1 s), the test's own polling, a loaded machine


def rule(name: str, metric: str, op: str, threshold: float, polling: int = 1, times: int = 3,
         action: str = "refuse-create") -> str:
    return json.dumps({"name": name, "metric": metric, "op": op, "threshold": round(threshold, 2),
                       "polling": polling, "times": times, "action": action})


def gmond_load(gmond) -> float:
    from powerstrip.adapters.hostaware.sources import parse_gmond_xml

    (host,) = parse_gmond_xml(gmond.xml())
    return host.metrics["load_one"]


def test_gmond_load_rule_refuses_creates_then_clears(dockerd, client, make_gateway, state_dir, powerstrip, gmond,
                                                     burner, ops):
    gw = make_gateway(EXAMPLE, state_dir=str(state_dir),
                      extra_args=["--metrics-source", gmond.url, "--metrics-listen", ops.listen])
    assert create(gw.url, "ha-before")[0] == 201
    baseline = statistics.median(gmond_load(gmond) for _ in range(3) if time.sleep(0.5) is None)
    threshold = baseline + 0.3
    burn = burner(3)
    powerstrip("rules", "add", rule("busy", "load_one", ">", threshold))
    first = powerstrip.wait_message("INFO", "busy", 75, "--host", socket.gethostname(), predicate=_first_of_three)
    met = powerstrip.wait_message("THRESHOLD_MET", "busy", 10)
    assert met["time"] - first["time"] <= 1 * 3 + BOUND
    status, message, _ = create(gw.url, "ha-refused")
    assert time.time() - first["time"] <= 1 * 3 + BOUND + 2
    assert status == 503
    assert "busy" in message and "load_one" in message and f"> {threshold:g}" in message
    assert ops.json("/hosts")["hosts"][0]["rules"]["busy"]["status"] == "met"
    (row,) = powerstrip("hosts", "list").stdout.splitlines()[1:]
    assert row.split()[:3] == [socket.gethostname(), gmond.url, "healthy"] and row.endswith("busy=met")
    text = ops.get("/metrics").decode()
    assert 'powerstrip_rule_met{host="%s",rule="busy"} 1.0' % socket.gethostname() in text
    assert 'metric="load_one"' in text

    burn.stop()
    powerstrip("rules", "delete", "busy")
    cleared = powerstrip.wait_message("CLEARED", "busy", 5)
    assert "deleted" in cleared["text"]
    assert create(gw.url, "ha-after")[0] == 201
    levels = [m["level"] for m in powerstrip.messages() if m["rule"] == "busy"]
    assert levels[:2] == ["INFO", "INFO"] and levels[-2:] == ["THRESHOLD_MET", "CLEARED"]
    assert [m["level"] for m in ops.json("/messages?host=" + socket.gethostname())["messages"]
            if m["rule"] == "busy"] == levels
    listed = powerstrip("messages").stdout
    assert "THRESHOLD_MET" in listed and "rule=busy" in listed and "action=refuse-create" in listed


def _first_of_three(message: dict) -> bool:
    return "(1 of 3)" in message["text"]


def machine_idle(samples: int = 3) -> float:
    """This machine's idle CPU in % (median of a few half-second samples)."""
    import psutil

    return statistics.median(100 - psutil.cpu_percent(interval=0.5) for _ in range(samples))


def test_builtin_cpu_idle_rule_clears_when_the_metric_falls_back(dockerd, client, make_gateway, state_dir,
                                                                 powerstrip, burner):
    idle = machine_idle()
    if idle < 30:
        pytest.skip(f"the machine is too busy (cpu idle {idle:.0f}%) to see a burner in cpu_idle reliably")
    threshold = min(20.0, idle / 3)
    gw = make_gateway(ONLY_HOSTAWARE, state_dir=str(state_dir))
    powerstrip("rules", "add", rule("idle", "cpu_idle", "<", threshold, times=2))
    powerstrip.wait_message("INFO", "idle", 10)
    burn = burner(3)
    met = powerstrip.wait_message("THRESHOLD_MET", "idle", 30)
    status, message, _ = create(gw.url, "ha-idle")
    assert status == 503 and "rule idle holds: cpu_idle" in message
    burn.stop()
    cleared = powerstrip.wait_message("CLEARED", "idle", 60)  # others' load may keep idle down a while
    assert "no longer" in cleared["text"] and cleared["value"] >= threshold and cleared["time"] > met["time"]
    assert create(gw.url, "ha-idle-after")[0] == 201
    hosts = powerstrip("hosts", "list").stdout
    assert "builtin" in hosts and "healthy" in hosts and "idle=ok" in hosts


class Garbage:
    """A TCP server that answers every connection with ``answer`` (or holds it open, answer None)."""

    def __init__(self, answer: bytes | None, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.answer is None:
                self.held.append(conn)
                continue
            with conn:
                conn.sendall(self.answer)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.mark.parametrize("kind", ["down", "garbage", "hangs"])
def test_a_bad_gmond_warns_and_never_acts(dockerd, client, make_gateway, state_dir, powerstrip, kind):
    fake = None if kind == "down" else Garbage(b"HTTP/1.1 200 OK\r\n\r\n<html>" if kind == "garbage" else None)
    port = fake.port if fake else socket.create_server(("127.0.0.1", 0)).getsockname()[1]  # closed at once
    try:
        gw = make_gateway(ONLY_HOSTAWARE, state_dir=str(state_dir),
                          extra_args=["--metrics-source", f"gmond://127.0.0.1:{port}"])
        powerstrip("rules", "add", rule("always", "load_one", ">=", 0, times=1))
        warn = powerstrip.wait_message("WARN", None, 15)
        assert f"gmond 127.0.0.1:{port}" in warn["text"] and "no rule acts" in warn["text"]
        time.sleep(2.5)  # more polls: still no action
        status, _, seconds = create(gw.url, f"ha-{kind}")
        assert status == 201 and seconds < 2
        assert not [m for m in powerstrip.messages() if m["level"] == "THRESHOLD_MET"]
        assert "no data" in powerstrip("hosts", "list").stdout
    finally:
        if fake:
            fake.close()


SINK = """
import socket, sys, time
server = socket.create_server((sys.argv[1], 0))
print(server.getsockname()[1], flush=True)
server.settimeout(30)
conn, _ = server.accept()
conn.settimeout(5)
deadline = time.monotonic() + 6  # then the sender's writes fail and it exits
while time.monotonic() < deadline and conn.recv(1 << 16):
    pass
conn.close()
"""


def test_builtin_bytes_in_rule_driven_by_real_traffic(dockerd, client, make_gateway, state_dir, powerstrip):
    """A container streams zeros for 6 s to a sink on the host side of its bridge: bytes_in of the
    gateway's network namespace (the daemon's, where the gateway runs as on a real host) rises, and
    falls back when the sink closes."""
    netns = ["nsenter", f"--net=/var/run/netns/{dockerd.netns}"]
    bridge_ip = str(ip_network(client.networks.get("bridge").attrs["IPAM"]["Config"][0]["Subnet"])[1])  # docker0
    gw = make_gateway(ONLY_HOSTAWARE, state_dir=str(state_dir), command=[*netns, sys.executable, "-m", "powerstrip"])
    powerstrip("rules", "add", rule("traffic", "bytes_in", ">", 5e6, times=2))
    powerstrip.wait_message("INFO", "traffic", 10)
    time.sleep(2.5)
    assert not [m for m in powerstrip.messages() if m["level"] == "THRESHOLD_MET"]  # idle: no traffic yet
    sink = subprocess.Popen([*netns, sys.executable, "-c", SINK, bridge_ip], stdout=subprocess.PIPE, text=True)
    try:
        port = int(sink.stdout.readline())
        sender = client.containers.run("ps-busybox:latest", ["sh", "-c", f"nc {bridge_ip} {port} < /dev/zero"],
                                       detach=True, labels={"powerstrip-test": "hostaware"})
        met = powerstrip.wait_message("THRESHOLD_MET", "traffic", 15)
        assert met["value"] > 5e6
        status, message, _ = create(gw.url, "ha-traffic")
        assert status == 503 and "bytes_in" in message
        sender.wait(timeout=30)
        cleared = powerstrip.wait_message("CLEARED", "traffic", 15)
        assert cleared["value"] <= 5e6
        assert create(gw.url, "ha-traffic-after")[0] == 201
    finally:
        sink.kill()
        sink.wait(10)

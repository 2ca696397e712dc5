"""The isolate:<network> and webhook:<url> actions, through the gateway against a real dockerd.

The rules here are always met (``load_one >= 0``, one poll): what is tested is the action and its
undoing, not the metric (tests/integration/hostaware/test_rules.py drives real load).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.util import wait_until

from .conftest import create
from .test_rules import ONLY_HOSTAWARE, Garbage, rule

pytestmark = pytest.mark.docker


def in_netns(dockerd, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net=/var/run/netns/{dockerd.netns}", *argv], capture_output=True,
                          text=True, timeout=30)


def test_isolate_drops_the_networks_traffic_until_cleared(dockerd, client, make_gateway, state_dir, powerstrip):
    network = client.networks.create("ha-front", driver="bridge")
    try:
        made = [client.containers.run("ps-busybox:latest", ["sleep", "120"], name=f"ha-iso{i}", detach=True,
                                      network="ha-front", labels={"powerstrip-test": "hostaware"}) for i in (1, 2)]
        for c in made:
            c.reload()
        target = made[1].attrs["NetworkSettings"]["Networks"]["ha-front"]["IPAddress"]

        def pings() -> bool:
            return made[0].exec_run(["ping", "-c", "1", "-W", "1", target]).exit_code == 0

        assert pings()
        # iptables acts on the network namespace it runs in: the gateway runs in the daemon's, as on a real host
        command = ["nsenter", f"--net=/var/run/netns/{dockerd.netns}", sys.executable, "-m", "powerstrip"]
        first = make_gateway(ONLY_HOSTAWARE, state_dir=str(state_dir), command=command)
        powerstrip("rules", "add", rule("cut", "load_one", ">=", 0, times=1, action="isolate:ha-front"))
        powerstrip.wait_message("THRESHOLD_MET", "cut", 15)
        assert not pings()
        assert "powerstrip-hostaware:cut" in in_netns(dockerd, "iptables", "-S", "FORWARD").stdout
        assert not [m for m in powerstrip.messages() if m["level"] == "WARN"]
        powerstrip("rules", "delete", "cut")
        powerstrip.wait_message("CLEARED", "cut", 5)
        wait_until(pings, 10, 0.2, "the containers to reach each other again")
        for chain in ("FORWARD", "INPUT"):
            assert "powerstrip-hostaware" not in in_netns(dockerd, "iptables", "-S", chain).stdout

        # a gateway killed while isolating leaves its rules; the next one removes them when it starts
        first.stop(remove_dir=False)  # one gateway per namespace (a second would sweep the first's rules)
        powerstrip("rules", "add", rule("cut2", "load_one", ">=", 0, times=1, action="isolate:ha-front"))
        killed = make_gateway(ONLY_HOSTAWARE, state_dir=str(state_dir), command=command)
        wait_until(lambda: not pings(), 15, 0.2, "the second isolation")
        killed.proc.kill()
        killed.proc.wait(10)
        powerstrip("rules", "delete", "cut2")
        time.sleep(1.5)  # no gateway runs to undo it
        assert "powerstrip-hostaware:cut2" in in_netns(dockerd, "iptables", "-S", "FORWARD").stdout
        assert not pings()
        make_gateway(ONLY_HOSTAWARE, state_dir=str(state_dir), command=command)
        wait_until(pings, 15, 0.2, "the stale isolation removed by the next gateway")
        assert "powerstrip-hostaware" not in in_netns(dockerd, "iptables", "-S", "FORWARD").stdout
    finally:
        for c in client.containers.list(all=True, filters={"label": "powerstrip-test=hostaware"}):
            c.remove(force=True)
        network.remove()


def test_isolate_of_an_unknown_network_is_a_warning(dockerd, client, make_gateway, state_dir, powerstrip):
    make_gateway(ONLY_HOSTAWARE, state_dir=str(state_dir))
    powerstrip("rules", "add", rule("cut", "load_one", ">=", 0, times=1, action="isolate:ha-nowhere"))
    warn = powerstrip.wait_message("WARN", "cut", 15)
    assert "cannot isolate ha-nowhere" in warn["text"]


class Receiver:
    """An HTTP server that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhook_is_called_on_met_and_on_clear(dockerd, client, make_gateway, state_dir, powerstrip, tmp_path):
    receiver = Receiver()
    audit = tmp_path / "audit.log"
    try:
        make_gateway(ONLY_HOSTAWARE, state_dir=str(state_dir), extra_args=["--audit-log", str(audit)])
        powerstrip("rules", "add", rule("hook", "load_one", ">=", 0, times=1, action=f"webhook:{receiver.url}"))
        wait_until(lambda: len(receiver.received) == 1, 15, 0.1, "the webhook's THRESHOLD_MET call")
        got = receiver.received[0]
        assert got["level"] == "THRESHOLD_MET" and got["rule"]["name"] == "hook" and got["metric"] == "load_one"
        powerstrip("rules", "delete", "hook")
        wait_until(lambda: len(receiver.received) == 2, 10, 0.1, "the webhook's CLEARED call")
        assert receiver.received[1]["level"] == "CLEARED"
        # the action and its undoing are audit lines too
        entries = [json.loads(line) for line in audit.read_text().splitlines()]
        decisions = [(e["level"], e["rule"], e["decision"]) for e in entries if e.get("event") == "hostaware"]
        assert decisions == [("THRESHOLD_MET", "hook", "applied"), ("CLEARED", "hook", "undone")]
    finally:
        receiver.close()


def test_a_hanging_webhook_delays_nothing(dockerd, client, make_gateway, state_dir, powerstrip):
    hanging = Garbage(None)  # accepts, never answers
    try:
        gw = make_gateway(ONLY_HOSTAWARE, state_dir=str(state_dir))
        powerstrip("rules", "add", rule("hook", "load_one", ">=", 0, times=1,
                                        action=f"webhook:http://127.0.0.1:{hanging.port}/hook"))
        powerstrip.wait_message("THRESHOLD_MET", "hook", 15)
        started = time.time()
        powerstrip("rules", "add", rule("busy", "load_one", ">=", 0, times=1))
        met = powerstrip.wait_message("THRESHOLD_MET", "busy", 10)
        assert met["time"] - started < 1 + 3.0  # polled on time while the webhook hangs
        status, message, seconds = create(gw.url, "ha-hook")
        assert status == 503 and seconds < 1.0
        warn = powerstrip.wait_message("WARN", "hook", 10)
        assert "failed" in warn["text"]
    finally:
        hanging.close()

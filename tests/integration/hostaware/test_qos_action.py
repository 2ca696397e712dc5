"""The qos:<policy JSON> action on one host: real iperf3 traffic between two containers' namespaces.

The gateway runs examples/host-aware.yml (hostaware, net and qos) in the Docker daemon's network
namespace, as on a real host. The rule is always met (``load_one >= 0``, one poll): what is tested is
the action and its undoing, with the clear driven by deleting the rule (test_rules.py drives real
load). Rates are what the receiving iperf3 counted over a few seconds of TCP.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from harness.cli import NEW_CLI, run_docker
from harness.gateway import REPO_ROOT, Gateway
from harness.qos import Iperf, Powerstrip, ensure_tools, in_netns
from harness.util import wait_until
from powerstrip.adapters.hostaware.qos_action import policy_name
from tests.integration.qos.conftest import client, iperf  # noqa: F401 - fixtures
from tests.integration.qos.test_single_host import address, netns, shaped, tc_show

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]

EXAMPLE = REPO_ROOT / "examples" / "host-aware.yml"
CIDR = "SOCKETPLANE_CIDR=10.0.7.1/24"
RULE = {"name": "slow", "metric": "load_one", "op": ">=", "threshold": 0, "polling": 1, "times": 1,
        "action": 'qos:{"rate": "2mbit"}'}
POLICY = policy_name("slow", socket.gethostname())  # the gateway's host name: same UTS namespace as the test


class Box:
    """The gateway in the daemon's namespace, and the CLI beside it (same daemon and state directory)."""

    def __init__(self, dockerd, tmp_path) -> None:
        self.dockerd = dockerd
        self.state_dir = tmp_path / "state"
        self.audit = tmp_path / "audit.log"
        self.cli = Powerstrip(dockerd.netns, dockerd.url, self.state_dir)
        self.gw: Gateway | None = None
        self.logs: list[str] = []

    def start(self) -> Gateway:
        self.gw = Gateway(self.dockerd.url, config=EXAMPLE, state_dir=str(self.state_dir),
                          extra_args=["--audit-log", str(self.audit)],
                          command=in_netns(f"/var/run/netns/{self.dockerd.netns}", sys.executable, "-m", "powerstrip"))
        return self.gw.start()

    def stop(self, kill: bool = False) -> None:
        assert self.gw is not None
        if kill:
            self.gw.proc.kill()
            self.gw.proc.wait(10)
        self.gw.stop(remove_dir=False)
        self.logs.append(self.gw.log_tail(60))
        self.gw.cleanup()
        self.gw = None

    def messages(self) -> list[dict]:
        out = self.cli("messages", "--json", "--tail", "1000").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def wait_message(self, level: str, text: str = "", timeout: float = 15.0, after: int = 0) -> dict:
        found: list[dict] = []

        def seen() -> bool:
            found[:] = [m for m in self.messages() if m["id"] > after and m["level"] == level
                        and m["rule"] == "slow" and text in m["text"]]
            return bool(found)

        wait_until(seen, timeout, 0.25, f"a {level} message of rule slow ({text!r})")
        return found[0]

    def qos_rows(self) -> list[str]:
        return self.cli("qos", "list").stdout.splitlines()[1:]


@pytest.fixture
def box(dockerd, client, tmp_path, request) -> Iterator[Box]:  # noqa: F811 - client: the qos harness's fixture
    ensure_tools()
    made = Box(dockerd, tmp_path)
    made.start()
    try:
        yield made
    finally:
        if made.gw is not None:
            made.stop()
        failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))
        if failed:
            print("\n===== gateway log tails =====\n" + "\n-----\n".join(made.logs))


def run(box: Box, name: str) -> None:
    """``docker run`` through the gateway, on a powerstrip network."""
    done = run_docker(box.gw.url, "run", "-d", "--name", name, "-e", CIDR, "ubuntu", "sleep", "600", docker=NEW_CLI)
    assert done.rc == 0, str(done)


def test_a_qos_rule_limits_the_hosts_containers_while_it_holds(box: Box, client, iperf: Iperf) -> None:  # noqa: F811
    for name in ("q1", "q2"):
        run(box, name)
    q1, q2, a2 = netns(client, "q1"), netns(client, "q2"), address(client, "q2")
    before = iperf.mbits(q1, q2, a2)
    assert before >= 20 * 2.4, f"q1 -> q2 before any rule: {before:.1f} Mbit/s"

    bad = box.cli("rules", "add", json.dumps({**RULE, "action": 'qos:{"rate": "2mb"}'}), ok=False)
    assert "qos:<policy JSON>: invalid rate '2mb'" in bad.stderr
    bad = box.cli("rules", "add", json.dumps({**RULE, "action": 'qos:{"ip-src": "192.168.9.9", "rate": "2mbit"}'}),
                  ok=False)
    assert "ip-src 192.168.9.9 is not on a powerstrip network" in bad.stderr
    assert box.cli("rules", "list").stdout.splitlines()[1:] == []  # nothing stored

    box.cli("rules", "add", json.dumps(RULE))
    met = box.wait_message("THRESHOLD_MET")
    applied = box.wait_message("INFO", f"QoS policy {POLICY} applied to", after=met["id"] - 1)
    assert "q1" in applied["text"] and "q2" in applied["text"]
    (row,) = box.qos_rows()
    assert re.fullmatch(rf"{re.escape(POLICY)}\s+any\s+rate=2mbit\s+q1 \(container\), q2 \(container\)\s+applied"
                        r"\s+rule slow", row), row
    assert shaped(q1) and shaped(q2)  # on the kernel when the message says so
    limited = iperf.mbits(q1, q2, a2)
    assert 1.6 <= limited <= 2.4, f"q1 -> q2 while rule slow holds: {limited:.2f} Mbit/s"

    box.cli("rules", "delete", "slow")
    cleared = box.wait_message("CLEARED")
    box.wait_message("INFO", f"QoS policy {POLICY} removed", after=cleared["id"] - 1)
    assert box.qos_rows() == []
    assert not shaped(q1) and tc_show(q1, "filter") == "" and tc_show(q1, "class") == ""
    after = iperf.mbits(q1, q2, a2)
    assert after >= 20 * limited, f"q1 -> q2 after the rule cleared: {after:.1f} Mbit/s vs {limited:.2f}"
    assert not [m for m in box.messages() if m["level"] == "WARN"]
    print(f"\nq1 -> q2 Mbit/s: before {before:.1f}, rule slow holds {limited:.2f}, cleared {after:.1f}")

    entries = [json.loads(line) for line in box.audit.read_text().splitlines()]
    decisions = [(e["level"], e["action"], e["decision"]) for e in entries if e.get("event") == "hostaware"]
    assert decisions == [("THRESHOLD_MET", RULE["action"], "applied"), ("CLEARED", RULE["action"], "undone")]


def test_restarts_remove_the_policy_and_the_rule_applies_it_again(box: Box, client) -> None:  # noqa: F811
    run(box, "r1")
    r1 = netns(client, "r1")
    box.cli("rules", "add", json.dumps(RULE))
    box.wait_message("INFO", f"QoS policy {POLICY} applied to")
    assert shaped(r1)

    # a gateway that stops removes the policy of a rule that holds: nobody watches the rule any more
    box.stop()
    assert box.qos_rows() == [] and not shaped(r1)

    # the next gateway applies it again once the rule holds again (after its times polls)
    last = box.messages()[-1]["id"]
    box.start()
    box.wait_message("THRESHOLD_MET", after=last)
    wait_until(lambda: shaped(r1), 10, 0.2, "the limit back on r1")
    assert [row.split()[0] for row in box.qos_rows()] == [POLICY]

    # a gateway killed while the rule holds leaves the policy; the next one sweeps it, then re-applies it
    box.stop(kill=True)
    assert [row.split()[0] for row in box.qos_rows()] == [POLICY] and shaped(r1)
    box.cli("rules", "delete", "slow")  # deleted while no gateway runs
    box.start()
    wait_until(lambda: box.qos_rows() == [] and not shaped(r1), 15, 0.2, "the stale policy removed at start")


def test_a_dscp_rule_beside_an_operators_policy_leaves_it_applied(box: Box, client) -> None:  # noqa: F811
    """The rule's pass and the qos adapter's converger both program the container: after the rule's
    mark is gone, the converger's next passes must still apply the operator's policy (no stale view)."""
    run(box, "d1")
    d1, a1 = netns(client, "d1"), address(client, "d1")
    box.cli("qos", "add", "policy", json.dumps({"name": "ops", "ip-src": a1, "rate": "50mbit"}))
    box.cli("rules", "add", json.dumps({**RULE, "action": 'qos:{"dscp": "EF"}'}))
    box.wait_message("INFO", f"QoS policy {POLICY} applied to d1")

    def chain() -> str:
        return subprocess.run(in_netns(d1, "iptables", "-t", "mangle", "-S", "PS-QOS"), capture_output=True,
                              text=True, timeout=10).stdout

    assert "DSCP" in chain()
    time.sleep(2 * 2.0 + 1)  # the converger's passes see the mark while the rule holds
    box.cli("rules", "delete", "slow")
    box.wait_message("INFO", f"QoS policy {POLICY} removed")
    assert chain() == ""
    time.sleep(2 * 2.0 + 1)  # and after it is gone
    (row,) = box.qos_rows()
    assert re.fullmatch(r"ops\s+ip-src=\S+\s+rate=50mbit\s+d1 \(container\)\s+applied\s+-", row), row
    assert "rate 50Mbit" in tc_show(d1, "class")

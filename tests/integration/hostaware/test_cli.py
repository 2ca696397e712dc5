"""``powerstrip rules|hosts|messages`` as a user runs them, on a state directory (no gateway needed:
what a gateway would write is appended to the same store here)."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time

from harness.gateway import REPO_ROOT
from powerstrip.adapters.hostaware.model import Level, Message
from powerstrip.adapters.hostaware.sqlite_store import SqliteHostStore

BUSY = {"name": "busy", "metric": "load_one", "op": ">", "threshold": 4, "polling": 5, "times": 3,
        "action": "refuse-create"}


def test_rules_add_list_delete_and_errors(powerstrip):
    assert powerstrip("rules", "add", json.dumps(BUSY)).stdout == "busy\n"
    listed = powerstrip("rules", "list").stdout.splitlines()
    assert listed[0].split() == ["NAME", "CONDITION", "POLLING", "TIMES", "HOST", "ACTION"]
    assert listed[1].split() == ["busy", "load_one", ">", "4", "5s", "3", "(every", "host)", "refuse-create"]
    assert json.loads(powerstrip("rules", "list", "--json").stdout) == {**BUSY, "threshold": 4.0, "polling": 5.0}
    again = powerstrip("rules", "add", json.dumps(BUSY), ok=False)
    assert again.returncode == 1 and again.stderr == "Error: rule 'busy' exists (delete it first to change it)\n"
    bad = powerstrip("rules", "add", json.dumps({**BUSY, "name": "q", "action": "qos:{}"}), ok=False)
    assert bad.stderr == 'Error: "action" qos:<policy JSON>: no action: give "rate" (e.g. "2mbit") and/or "dscp" (e.g. "EF")\n'
    bad = powerstrip("rules", "add", json.dumps({**BUSY, "name": "q", "action": 'qos:{"network": "nowhere", "dscp": 1}'}),
                     ok=False)
    assert "network nowhere not found" in bad.stderr  # checked against the networks: nothing stored
    slow = {**BUSY, "name": "slow", "action": 'qos:{"rate": "2mbit"}'}
    assert powerstrip("rules", "add", json.dumps(slow)).stdout == "slow\n"
    assert powerstrip("rules", "list").stdout.splitlines()[2].endswith('qos:{"rate": "2mbit"}')
    assert powerstrip("rules", "delete", "slow").stdout == "slow\n"
    assert powerstrip("rules", "add", "not json", ok=False).stderr.startswith("Error: a rule is a JSON object")
    assert powerstrip("rules", "delete", "busy").stdout == "busy\n"
    assert powerstrip("rules", "delete", "busy", ok=False).stderr == "Error: no rule 'busy'\n"


def test_messages_filter_and_follow(powerstrip, state_dir):
    store = SqliteHostStore(state_dir / "hostaware.db")
    store.append([Message(time.time(), Level.INFO, "h1", "watching", "busy", "load_one", None, "refuse-create"),
                  Message(time.time(), Level.WARN, "h2", "no metrics: gmond down")])
    lines = powerstrip("messages").stdout.splitlines()
    assert len(lines) == 2 and "INFO" in lines[0] and "rule=busy" in lines[0] and "action=refuse-create" in lines[0]
    assert [json.loads(line)["host"] for line in powerstrip("messages", "--json", "--host", "h2").stdout.splitlines()] \
        == ["h2"]
    follow = subprocess.Popen([sys.executable, "-m", "powerstrip", "messages", "--follow", "--tail", "0",
                               "--state-dir", str(state_dir)], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        time.sleep(1.5)  # it has started and shows nothing old
        store.append([Message(time.time(), Level.THRESHOLD_MET, "h1", "met", "busy", "load_one", 5.5, "refuse-create")])
        ready, _, _ = select.select([follow.stdout], [], [], 10)  # bounded: the follower polls every second
        assert ready, "messages --follow printed nothing within 10 s"
        line = follow.stdout.readline()
        assert "THRESHOLD_MET" in line and "load_one=5.5" in line
    finally:
        follow.kill()
        follow.wait(10)


def test_hosts_list_without_hosts(powerstrip):
    assert powerstrip("hosts", "list").stdout.split()[:3] == ["HOST", "SOURCE", "STATE"]

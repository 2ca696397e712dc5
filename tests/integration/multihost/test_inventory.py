"""``powerstrip inventory`` driven by the real Ansible (Debian's ansible, with community.docker's docker
connection): two simulated hosts whose gateways also listen on the underlay and advertise that
address, containers on a powerstrip network on both, and Ansible run from the root namespace —
where no Docker daemon is reachable except through those gateways (DOCKER_HOST points nowhere)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.multihost import Cluster, SimHost
from harness.util import apt_install

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

LOOP = ["/bin/sh", "-c", "while true; do sleep 1; done"]
GATEWAY_PORT = 2375
INVENTORY = Path(sys.executable).parent / "powerstrip-inventory"


@pytest.fixture(scope="module")
def hosts() -> Iterator[list[SimHost]]:
    if os.environ.get("POWERSTRIP_SKIP_DOCKER"):
        pytest.skip("POWERSTRIP_SKIP_DOCKER is set")
    if shutil.which("ansible-inventory") is None:
        apt_install(["ansible"])
    made = Cluster(2).start()
    try:
        for host in made.hosts:
            url = f"tcp://{host.address}:{GATEWAY_PORT}"
            host.start_powerstrip("--listen", url, "--advertise-gateway", url)
        yield made.hosts
    finally:
        made.stop()
    left = made.leftovers()
    assert not left, f"the multi-host harness left behind: {left}"


@pytest.fixture(scope="module")
def ansible_env(hosts: list[SimHost]) -> Iterator[dict[str, str]]:
    home = tempfile.mkdtemp(prefix="psansible-")
    env = dict(os.environ, POWERSTRIP_CLUSTER=hosts[0].cluster_url, DOCKER_HOST="unix:///nonexistent/docker.sock",
               ANSIBLE_HOME=home, ANSIBLE_LOCAL_TEMP=f"{home}/tmp", ANSIBLE_NOCOLOR="1",
               ANSIBLE_INVENTORY_ENABLED="script", ANSIBLE_PYTHON_INTERPRETER="auto_silent")
    env.pop("POWERSTRIP_DOCKER_HOST", None)
    env.pop("DOCKER_CONTEXT", None)
    try:
        yield env
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_container(host: SimHost, name: str, *options: str) -> None:
    host.docker("create", "--name", name, *options, "ubuntu", *LOOP)
    host.docker("start", name)


def ansible(env: dict[str, str], *args: str, tool: str = "ansible") -> subprocess.CompletedProcess:
    result = subprocess.run([tool, "-i", str(INVENTORY), *args], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, f"{tool} {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def test_ansible_inventory_lists_hosts_networks_and_labels(hosts: list[SimHost], ansible_env: dict[str, str]) -> None:
    h1, h2 = hosts
    h1.powerstrip("network", "create", "web", "10.6.0.0/16")
    run_container(h1, "web1", "-e", "SP_NETWORK=web", "--label", "tier=front")
    run_container(h2, "web2", "-e", "SP_NETWORK=web", "--label", "tier=back", "--label", "app=shop.v2")
    run_container(h1, "dup", "-e", "SP_NETWORK=web")
    run_container(h2, "dup", "-e", "SP_NETWORK=web")
    run_container(h1, "plain")  # on no powerstrip network: not in the inventory

    listed = json.loads(ansible(ansible_env, "--list", tool="ansible-inventory").stdout)
    hostvars = listed["_meta"]["hostvars"]
    assert set(listed["powerstrip_hosts"]["hosts"]) == {h1.address, h2.address}
    assert hostvars[h1.address]["ansible_host"] == h1.address
    assert hostvars[h2.address]["powerstrip_gateway"] == f"tcp://{h2.address}:{GATEWAY_PORT}"
    dups = {f"dup@{h1.address}", f"dup@{h2.address}"}
    assert set(listed["net_web"]["hosts"]) == {"web1", "web2", *dups}
    assert "plain" not in hostvars
    assert listed["label_tier_front"]["hosts"] == ["web1"]
    assert listed["label_tier_back"]["hosts"] == ["web2"]
    assert listed["label_app_shop_v2"]["hosts"] == ["web2"]
    for name, host in (("web1", h1), ("web2", h2)):
        assert hostvars[name]["ansible_connection"] == "docker"
        assert hostvars[name]["ansible_docker_extra_args"] == f"-H tcp://{host.address}:{GATEWAY_PORT}"
        assert hostvars[name]["powerstrip_host"] == host.address
        assert hostvars[name]["powerstrip_network"] == "web"
        assert hostvars[name]["powerstrip_state"] == "running"
    assert hostvars["web2"]["powerstrip_labels"] == {"tier": "back", "app": "shop.v2"}

    # --host answers what --list has in _meta (and {} for a host it does not know)
    one = subprocess.run([str(INVENTORY), "--host", "web2"], capture_output=True, text=True, env=ansible_env, timeout=60)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout) == {k: v for k, v in hostvars["web2"].items() if not k.startswith("ansible_python")}
    unknown = subprocess.run([str(INVENTORY), "--host", "nosuch"], capture_output=True, text=True, env=ansible_env,
                             timeout=60)
    assert unknown.returncode == 0 and json.loads(unknown.stdout) == {}


def test_ad_hoc_raw_runs_inside_the_containers_through_the_gateways(hosts: list[SimHost],
                                                                   ansible_env: dict[str, str]) -> None:
    h1, h2 = hosts
    out = ansible(ansible_env, "net_web", "-m", "raw", "-a", "hostname", "-o").stdout
    answers = dict(re.findall(r"^(\S+) \| CHANGED \| rc=0 \| \(stdout\) (\S+?)(?:\\n)*$", out, re.M))
    expected = {"web1": h1.docker("exec", "web1", "hostname").stdout.strip(),
                "web2": h2.docker("exec", "web2", "hostname").stdout.strip(),
                f"dup@{h1.address}": h1.docker("exec", "dup", "hostname").stdout.strip(),
                f"dup@{h2.address}": h2.docker("exec", "dup", "hostname").stdout.strip()}
    assert answers == expected, out
    # inside the container's network namespace: it has the address powerstrip gave it
    listed = json.loads(ansible(ansible_env, "--list", tool="ansible-inventory").stdout)["_meta"]["hostvars"]
    addr = ansible(ansible_env, "label_tier_back", "-m", "raw", "-a", "ip -4 -o addr show eth0", "-o").stdout
    assert f"inet {listed['web2']['powerstrip_ip']}/16" in addr, addr


def test_a_host_that_cannot_be_asked_still_lists_its_containers(hosts: list[SimHost],
                                                                ansible_env: dict[str, str]) -> None:
    h1, h2 = hosts
    h2.stop_powerstrip()
    try:
        result = subprocess.run([str(INVENTORY), "--list"], capture_output=True, text=True, env=ansible_env, timeout=90)
        assert result.returncode == 0, result.stderr
        listed = json.loads(result.stdout)
        # its lease is still alive (no goodbye on the way out): listed, with a warning that it did not answer
        assert "web2" in listed["net_web"]["hosts"] and "web1" in listed["net_web"]["hosts"]
        assert f"containers of {h2.address}" in result.stderr, result.stderr
        assert listed["_meta"]["hostvars"]["web2"]["powerstrip_state"] == "unknown"
    finally:
        url = f"tcp://{h2.address}:{GATEWAY_PORT}"
        h2.start_powerstrip("--listen", url, "--advertise-gateway", url)

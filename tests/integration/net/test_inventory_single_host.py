"""``powerstrip inventory`` on a single host (the SQLite state, no cluster): the real ``ansible-inventory``
parses it and an ad-hoc ``raw`` command runs inside the containers through the gateway — which logs
every exec Ansible makes, while DOCKER_HOST points nowhere."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from harness.gateway import REPO_ROOT, Gateway
from harness.net import clean_daemon
from harness.util import apt_install

pytestmark = pytest.mark.docker

CONFIG = REPO_ROOT / "examples" / "socketplane.yml"
INVENTORY = Path(sys.executable).parent / "powerstrip-inventory"
LOOP = ["/bin/sh", "-c", "while true; do sleep 1; done"]


@pytest.fixture
def client(dockerd):
    c = docker.DockerClient(base_url=dockerd.url, timeout=60)
    yield c
    clean_daemon(c, dockerd)
    c.close()


def test_single_host_inventory_through_the_gateway(client, make_gateway, dockerd, tmp_path) -> None:
    if shutil.which("ansible-inventory") is None:
        apt_install(["ansible"])
    state = tmp_path / "state"
    gw: Gateway = make_gateway(CONFIG, state_dir=str(state))
    through = docker.DockerClient(base_url=gw.url, timeout=60)
    try:
        ids = {}
        for name, labels in (("app1", {"role": "app"}), ("app2", {"role": "app", "tier": "2"})):
            ids[name] = through.containers.run("ubuntu", LOOP, name=name, detach=True, labels=labels,
                                               environment={"SOCKETPLANE_CIDR": "10.0.30.1/24"}).id
        through.containers.run("ubuntu", LOOP, name="outside", detach=True)  # on no powerstrip network
    finally:
        through.close()
    env = dict(os.environ, POWERSTRIP_DOCKER_HOST=dockerd.url, POWERSTRIP_STATE_DIR=str(state),
               POWERSTRIP_GATEWAY=gw.url, DOCKER_HOST="unix:///nonexistent/docker.sock", ANSIBLE_HOME=str(tmp_path),
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_NOCOLOR="1", ANSIBLE_INVENTORY_ENABLED="script")
    env.pop("POWERSTRIP_CLUSTER", None)
    listed = subprocess.run(["ansible-inventory", "-i", str(INVENTORY), "--list"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    doc = json.loads(listed.stdout)
    assert sorted(doc["net_10_0_30_0_24"]["hosts"]) == ["app1", "app2"]
    assert sorted(doc["label_role_app"]["hosts"]) == ["app1", "app2"] and doc["label_tier_2"]["hosts"] == ["app2"]
    assert "outside" not in doc["_meta"]["hostvars"] and "powerstrip_hosts" not in doc
    assert doc["_meta"]["hostvars"]["app1"]["ansible_docker_extra_args"] == f"-H {gw.url}"
    assert doc["_meta"]["hostvars"]["app2"]["powerstrip_ip"] == "10.0.30.3"

    ran = subprocess.run(["ansible", "-i", str(INVENTORY), "label_role_app", "-m", "raw", "-a", "hostname", "-o"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert dict(re.findall(r"^(\S+) \| CHANGED \| rc=0 \| \(stdout\) (\S+?)(?:\\n)*$", ran.stdout, re.M)) == {
        "app1": "app1", "app2": "app2"}
    for container in ids.values():  # the execs passed the gateway (its access log)
        assert re.search(rf"POST /v[\d.]+/containers/{container}/exec", gw.log_text())

"""SDK adapters through a real gateway and daemon: in-process, and served over protocol v1 and v2.

The same adapter code must give the same results whichever way it runs.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys

import docker
import pytest

from harness import rawhttp
from harness.adapter_service import AdapterService
from harness.cli import run_docker
from harness.gateway import REPO_ROOT

pytestmark = pytest.mark.docker

SAMPLE = "tests.integration.sdk_sample:adapter"
TUTORIAL = "examples.owner_policy:adapter"


def config(adapter: object, endpoints: dict | None = None) -> str:
    endpoints = endpoints or {"POST /*/containers/create": {"pre": ["sample"]}, "GET /*/version": {"post": ["sample"]}}
    return json.dumps({"endpoints": endpoints, "adapters": {"sample": adapter}})


@pytest.fixture(scope="module")
def services():
    with AdapterService(SAMPLE) as sample, AdapterService(TUTORIAL) as tutorial:
        yield {"sample": sample, "tutorial": tutorial}


def adapter_entry(mode: str, service: AdapterService, target: str) -> object:
    if mode == "in-process":
        return f"python:{target}"
    return {"url": service.url, "protocol": 2 if mode == "http-v2" else 1}


@pytest.fixture
def client(dockerd):
    client = docker.DockerClient(base_url=dockerd.url)
    yield client
    client.close()


@pytest.mark.parametrize("mode", ["in-process", "http-v1", "http-v2"])
def test_the_same_adapter_code_gives_the_same_results_every_way(mode, services, make_gateway, client, uniq):
    gw = make_gateway(config(adapter_entry(mode, services["sample"], SAMPLE)))
    name = f"sdk-{uniq}"
    try:
        created = run_docker(gw.url, "create", "--name", name, "-e", "A=0", "--label", "k=v", "ps-busybox", "true")
        assert created.rc == 0, created.err
        container = client.containers.get(name)
        assert container.labels == {"k": "v", "checked": "yes"}
        assert container.attrs["Config"]["Env"][:2] == ["A=0", "SDK=1"]
    finally:
        run_docker(gw.url, "rm", "-f", name)
    refused = run_docker(gw.url, "create", "--privileged", "ps-busybox", "true")
    assert refused.rc != 0
    assert "adapter sample: privileged containers are not allowed here" in refused.err
    assert docker.DockerClient(base_url=gw.url).version()["PoweredBy"] == "powerstrip-sdk"
    api = docker.APIClient(base_url=gw.url, version="1.41")
    warnings = api.get(api._url("/version")).raw.headers.getlist("Warning")
    # protocol 1 has no place for warnings (the service logs them)
    assert warnings == ([] if mode == "http-v1" else ['299 powerstrip "adapter sample: answered through the sample adapter"'])


@pytest.mark.parametrize("mode", ["in-process", "http-v2"])
def test_tutorial_adapter_labels_the_owner_from_the_unix_peer(mode, services, make_gateway, client, uniq):
    gw = make_gateway(config(adapter_entry(mode, services["tutorial"], TUTORIAL),
                             {"POST /*/containers/create": {"pre": ["sample"]}}))
    name = f"owner-{uniq}"
    try:
        assert run_docker(gw.url, "create", "--name", name, "ps-busybox", "true").rc == 0
        assert client.containers.get(name).labels["owner"] == pwd.getpwuid(os.getuid()).pw_name
    finally:
        run_docker(gw.url, "rm", "-f", name)
    refused = run_docker(gw.url, "run", "--rm", "--privileged", "ps-busybox", "true")
    assert refused.rc != 0 and "privileged containers are not allowed here" in refused.err


def test_a_dry_run_shows_what_the_daemon_would_get_and_creates_nothing(services, make_gateway, client, uniq):
    gw = make_gateway(config({"url": services["sample"].url, "protocol": 2}))
    name = f"dry-{uniq}"
    reply = rawhttp.request(gw.socket_path, "POST", f"/v1.41/containers/create?name={name}",
                            json.dumps({"Image": "ps-busybox"}).encode(),
                            {"Content-Type": "application/json", "X-Powerstrip-Dry-Run": "1"})
    assert reply.status == 200, reply.body
    answer = json.loads(reply.body)
    assert answer["DryRun"] is True and answer["Hooks"] == [{"Adapter": "sample", "Phase": "pre", "Outcome": "ok"}]
    assert json.loads(answer["Request"]["Body"]) == {"Image": "ps-busybox", "Labels": {"checked": "yes"},
                                                     "Env": ["SDK=1"]}
    unhooked = rawhttp.request(gw.socket_path, "POST", "/v1.41/networks/create",
                               json.dumps({"Name": name}).encode(), {"X-Powerstrip-Dry-Run": "true"})
    assert unhooked.status == 200 and json.loads(unhooked.body)["Hooks"] == []
    assert not client.containers.list(all=True, filters={"name": name})
    assert not client.networks.list(names=[name])


def test_a_python_adapter_that_cannot_be_imported_stops_the_gateway_with_a_clear_error(tmp_path, dockerd):
    path = tmp_path / "adapters.yml"
    path.write_text(config("python:no_such_module_anywhere:adapter"))
    done = subprocess.run([sys.executable, "-m", "powerstrip", "serve", "--config", str(path), "--docker", dockerd.url,
                           "--listen", f"unix://{tmp_path}/gw.sock"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "cannot import 'no_such_module_anywhere': ModuleNotFoundError" in done.stderr


def test_adapter_run_refuses_what_is_not_an_adapter():
    done = subprocess.run([sys.executable, "-m", "powerstrip", "adapter", "run", "tests.integration.sdk_sample:Reject"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "tests.integration.sdk_sample:Reject is a type, not an adapter" in done.stderr

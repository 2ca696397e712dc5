"""The net adapter end to end: the docker CLI through ``powerstrip serve --config examples/socketplane.yml``
against a real private dockerd, and the ``powerstrip network``/``info`` commands beside it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import docker
import pytest

from harness.cli import NEW_CLI, docker_env, run_docker
from harness.dockerd import PrivateDockerd
from harness.gateway import REPO_ROOT, Gateway, free_tcp_port
from harness.image import build_test_image
from harness.net import clean_daemon, leftovers
from harness.util import terminate, wait_until

from .conftest import restart_dockerd

pytestmark = pytest.mark.docker

CONFIG = REPO_ROOT / "examples" / "socketplane.yml"

SEED = """
docker create --name powerstrip-test1 -e SOCKETPLANE_CIDR="10.0.6.1/24" ubuntu /bin/sh -c "while true; do echo hello world; sleep 1; done"
docker create --name powerstrip-test2 -e SOCKETPLANE_CIDR="10.0.6.1/24" ubuntu /bin/sh -c "while true; do echo hello world; sleep 1; done"
docker start powerstrip-test1 ; docker start powerstrip-test2
docker exec powerstrip-test2 ifconfig
docker exec powerstrip-test2 ping -c 3 10.0.6.2
"""


class Powerstrip:
    """``python -m powerstrip`` with the same daemon and state directory as the gateway under test."""

    def __init__(self, docker_url: str, state_dir: Path) -> None:
        self.docker_url = docker_url
        self.state_dir = state_dir

    def __call__(self, *args: str, ok: bool | None = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "powerstrip", *args, "--docker", self.docker_url, "--state-dir", str(self.state_dir)],
            capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
        )
        if ok is not None:
            assert (result.returncode == 0) == ok, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result


def docker_cli(gw: Gateway, *args: str, ok: bool | None = True) -> str:
    result = run_docker(gw.url, *args, docker=NEW_CLI)
    if ok is not None:
        assert (result.rc == 0) == ok, str(result)
    return result.out + result.err


@pytest.fixture
def client(dockerd):
    c = docker.DockerClient(base_url=dockerd.url, timeout=60)
    yield c
    clean_daemon(c, dockerd)
    c.close()


@pytest.fixture
def state_dir(tmp_path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def gw(client, make_gateway, state_dir) -> Gateway:  # client first: its cleanup runs after the gateway stopped
    return make_gateway(CONFIG, state_dir=str(state_dir))


@pytest.fixture
def powerstrip(dockerd, state_dir) -> Powerstrip:
    return Powerstrip(dockerd.url, state_dir)


def test_seed_scenario_word_for_word(gw: Gateway, powerstrip: Powerstrip, client) -> None:
    env = docker_env(gw.url, PATH=f"{Path(NEW_CLI).parent}{os.pathsep}{os.environ['PATH']}")
    transcript = subprocess.run(["bash", "-ec", SEED], env=env, capture_output=True, text=True, timeout=120)
    assert transcript.returncode == 0, transcript.stdout + transcript.stderr
    assert re.search(r"inet addr:10\.0\.6\.3\s+Bcast:10\.0\.6\.255\s+Mask:255\.255\.255\.0", transcript.stdout)
    assert "3 packets transmitted, 3 packets received, 0% packet loss" in transcript.stdout

    info = powerstrip("info", "powerstrip-test1").stdout
    assert re.search(r"Network:\s+10\.0\.6\.0-24\nIP:\s+10\.0\.6\.2/24\nMAC:\s+02:42:0a:00:06:02\nGateway:\s+10\.0\.6\.1", info), info
    listing = powerstrip("network", "list").stdout.splitlines()
    assert listing[0].split() == ["NAME", "CIDR", "GATEWAY", "CONTAINERS"]
    assert listing[1].split() == ["10.0.6.0-24", "10.0.6.0/24", "10.0.6.1", "2"]
    assert listing[2].split() == ["default", "10.1.0.0/16", "10.1.0.1", "0"]

    docker_cli(gw, "rm", "-f", "powerstrip-test1", "powerstrip-test2")
    assert leftovers(client) == ([], [])
    assert [line.split()[0] for line in powerstrip("network", "list").stdout.splitlines()[1:]] == ["default"]


def test_named_networks_run_rm_and_the_cli(gw: Gateway, powerstrip: Powerstrip, client) -> None:
    assert powerstrip("network", "create", "web", "10.0.20.0/24").stdout.strip() == "web"
    docker_cli(gw, "run", "-d", "--name", "web1", "-e", "SP_NETWORK=web", "ubuntu", "sleep", "1000")
    pinged = docker_cli(gw, "run", "--rm", "-e", "SP_NETWORK=web", "ubuntu", "ping", "-c", "2", "web1")
    assert "PING web1 (10.0.20.2)" in pinged and "0% packet loss" in pinged
    wait_until(lambda: powerstrip("network", "list").stdout.splitlines()[2].split()[-1] == "1", 10, 0.2, "run --rm's address freed")
    assert re.search(r"\nweb1\s+10\.0\.20\.2\s+ps-net-", powerstrip("network", "info", "web").stdout)

    refused = powerstrip("network", "delete", "web", ok=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "Error response from daemon: network web has 1 attached container(s): web1"
    clash = powerstrip("network", "create", "web", "10.0.21.0/24", ok=False)
    assert clash.stderr.strip() == "Error response from daemon: network web already exists (10.0.20.0/24)"
    overlap = powerstrip("network", "create", "web2", "10.0.20.128/25", ok=False)
    assert overlap.stderr.strip() == "Error response from daemon: 10.0.20.128/25 overlaps network web (10.0.20.0/24)"
    bad = powerstrip("network", "create", "web3", "10.0.300.0/24", ok=False)
    assert "invalid CIDR '10.0.300.0/24'" in bad.stderr and bad.returncode == 1
    assert powerstrip("info", "nope", ok=False).stderr.strip() == "Error response from daemon: No such container: nope"

    docker_cli(gw, "run", "-d", "--name", "plain", "ubuntu", "sleep", "1000")
    not_ours = powerstrip("info", "plain", ok=False)
    assert not_ours.stderr.strip() == "Error response from daemon: container plain is not on a powerstrip network"
    assert client.containers.get("plain").attrs["HostConfig"]["NetworkMode"] in ("default", "bridge")

    docker_cli(gw, "rm", "-f", "web1", "plain")
    assert powerstrip("network", "delete", "web").stdout.strip() == "web"
    assert powerstrip("network", "info", "web", ok=False).stderr.strip() == "Error response from daemon: network web not found"
    assert leftovers(client) == ([], [])


def test_bad_input_gets_a_clear_error_and_creates_nothing(gw: Gateway, powerstrip: Powerstrip, client) -> None:
    before = {c.name for c in client.containers.list(all=True)}, {n.name for n in client.networks.list()}
    out = docker_cli(gw, "create", "-e", "SOCKETPLANE_CIDR=10.0.6.300/24", "ubuntu", "true", ok=False)
    assert "Error response from daemon: adapter net: invalid CIDR '10.0.6.300/24'" in out
    out = docker_cli(gw, "create", "-e", "SOCKETPLANE_CIDR=10.1.2.0/24", "ubuntu", "true", ok=False)
    assert "10.1.2.0/24 overlaps network default (10.1.0.0/16)" in out
    out = docker_cli(gw, "create", "-e", "SP_NETWORK=nowhere", "ubuntu", "true", ok=False)
    assert "network nowhere not found" in out
    # the daemon refuses (no such image; the CLI's pull fails too): the post-hook undoes the reservation
    out = docker_cli(gw, "create", "-e", "SOCKETPLANE_CIDR=10.0.50.0/24", "no-such-image", "true", ok=False)
    assert "no-such-image" in out
    assert ({c.name for c in client.containers.list(all=True)}, {n.name for n in client.networks.list()}) == before
    assert [line.split() for line in powerstrip("network", "list").stdout.splitlines()[1:]] == [["default", "10.1.0.0/16", "10.1.0.1", "0"]]


def test_a_container_without_the_variables_is_untouched(gw: Gateway, powerstrip: Powerstrip, client) -> None:
    docker_cli(gw, "create", "--name", "untouched", "-e", "A=1", "ubuntu", "true")
    assert client.containers.get("untouched").attrs["HostConfig"]["NetworkMode"] in ("default", "bridge")
    assert leftovers(client) == ([], [])
    unnamed = docker_cli(gw, "create", "-e", "SP_NETWORK=", "ubuntu", "true").strip()
    assert client.containers.get(unnamed).name in powerstrip("network", "info", "default").stdout


def test_a_restarted_gateway_frees_what_was_removed_while_it_was_down(client, make_gateway, dockerd, state_dir) -> None:
    first = make_gateway(CONFIG, state_dir=str(state_dir))
    docker_cli(first, "create", "--name", "gone", "-e", "SP_NETWORK=default", "ubuntu", "true")
    first.stop(remove_dir=False)
    client.containers.get("gone").remove(force=True)  # straight to the daemon, nobody watching
    make_gateway(CONFIG, state_dir=str(state_dir))
    wait_until(lambda: leftovers(client)[0] == [], 15, 0.2, "the reconcile at start")
    assert Powerstrip(dockerd.url, state_dir)("network", "list").stdout.splitlines()[1].split()[-1] == "0"


@pytest.fixture
def own_dockerd():
    d = PrivateDockerd()
    try:
        d.start()
        build_test_image(d.url)
        yield d
    finally:
        d.stop()


def test_a_daemon_restart_keeps_containers_on_their_network(own_dockerd, make_gateway, state_dir) -> None:
    gw = make_gateway(CONFIG, docker_url=own_dockerd.url, state_dir=str(state_dir))
    docker_cli(gw, "run", "-d", "--name", "always", "--restart", "always", "-e", "SOCKETPLANE_CIDR=10.0.30.0/24", "ubuntu", "sleep", "1000")
    docker_cli(gw, "run", "-d", "--name", "manual", "-e", "SOCKETPLANE_CIDR=10.0.30.0/24", "ubuntu", "sleep", "1000")
    restart_dockerd(own_dockerd)
    wait_until(lambda: "inet addr:10.0.30.2" in docker_cli(gw, "exec", "always", "ifconfig", "eth0", ok=None), 60, 0.5,
               "the restart policy to bring 'always' back on its address")
    docker_cli(gw, "start", "manual")
    assert "inet addr:10.0.30.3" in docker_cli(gw, "exec", "manual", "ifconfig", "eth0")
    assert "0% packet loss" in docker_cli(gw, "exec", "manual", "ping", "-c", "2", "always")
    docker_cli(gw, "rm", "-f", "always", "manual")
    own = docker.DockerClient(base_url=own_dockerd.url)
    wait_until(lambda: leftovers(own) == ([], []), 10, 0.2, "everything removed")
    own.close()


@pytest.fixture
def net_service(dockerd, state_dir):
    """``powerstrip adapter run builtin:net`` next to the gateway, as the seed's adapter ran."""
    port = free_tcp_port()
    url = f"http://127.0.0.1:{port}"

    def pong() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/v1/ping", timeout=2) as answer:
                return answer.read() == b"pong"
        except OSError:
            return False

    with open(state_dir.parent / "net-service.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "powerstrip", "adapter", "run", "builtin:net", "--listen", f"tcp://127.0.0.1:{port}",
             "--docker", dockerd.url, "--state-dir", str(state_dir)],
            cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
        try:
            wait_until(pong, 30, 0.2, "the net adapter service to answer pong")
            yield url
        finally:
            terminate(proc)


def test_the_seed_setup_with_the_adapter_as_a_service_next_to_powerstrip(client, net_service, make_gateway) -> None:
    config = CONFIG.read_text().replace("net: builtin:net", f"net: {{url: '{net_service}/net-adapter', timeout: 30}}")
    gw = make_gateway(config)
    docker_cli(gw, "create", "--name", "svc1", "-e", "SOCKETPLANE_CIDR=10.0.40.1/24", "ubuntu", "sleep", "1000")
    docker_cli(gw, "run", "-d", "--name", "svc2", "-e", "SOCKETPLANE_CIDR=10.0.40.1/24", "ubuntu", "sleep", "1000")
    docker_cli(gw, "start", "svc1")
    assert "inet addr:10.0.40.3" in docker_cli(gw, "exec", "svc2", "ifconfig")
    assert "0% packet loss" in docker_cli(gw, "exec", "svc2", "ping", "-c", "3", "10.0.40.2")
    docker_cli(gw, "rm", "-f", "svc1", "svc2")
    assert leftovers(client) == ([], [])


def test_the_net_commands_find_the_daemon_of_the_gateway_running_with_their_state_dir(gw: Gateway, state_dir, client):
    """As after ``make run``: no --docker, the private daemon is not at /var/run/docker.sock."""
    def bare(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "POWERSTRIP_DOCKER_HOST"}
        return subprocess.run([sys.executable, "-m", "powerstrip", *args, "--state-dir", str(state_dir)],
                              capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env=env)

    created = bare("network", "create", "found", "10.0.40.0/24")
    assert created.returncode == 0, created.stderr
    assert any(n.name.endswith("found") or "found" in n.name for n in client.networks.list()), "made on gw's daemon"
    assert bare("network", "delete", "found").returncode == 0

"""QoS on a single-host network: iperf3 between containers, tcpdump on the bridge, restarts, SP_QOS_RATE.

Rates are what the receiving iperf3 counted over a few seconds of TCP. The limited direction must be
within 1.6-2.4 Mbit/s for a 2mbit policy; unlimited traffic at least 20 times what the limited got.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import docker
import pytest

from harness.cli import NEW_CLI, run_docker
from harness.qos import Iperf, Powerstrip, QosGateway, in_netns
from harness.util import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]

CIDR = "SOCKETPLANE_CIDR=10.0.6.1/24"
BOUND = 6.0  # the converger's documented bound (2 s + a pass), with room for a busy machine


def docker_cli(box: QosGateway, *args: str, ok: bool = True) -> str:
    result = run_docker(box.gw.url, *args, docker=NEW_CLI)
    assert (result.rc == 0) == ok, str(result)
    return result.out + result.err


def run(box: QosGateway, name: str, *env: str) -> None:
    docker_cli(box, "run", "-d", "--name", name, *[a for e in (CIDR, *env) for a in ("-e", e)], "ubuntu", "sleep", "600")


def netns(client: docker.DockerClient, name: str) -> str:
    return f"/proc/{client.containers.get(name).attrs['State']['Pid']}/ns/net"


def address(client: docker.DockerClient, name: str) -> str:
    out = client.containers.get(name).exec_run(["ip", "-4", "-o", "addr", "show", "eth0"]).output.decode()
    return re.search(r"inet (\S+)/", out)[1]


def tc_show(ns: str, what: str = "qdisc") -> str:
    return subprocess.run(in_netns(ns, "tc", what, "show", "dev", "eth0"), capture_output=True, text=True,
                          timeout=10).stdout


def shaped(ns: str) -> bool:
    return "htb 5053:" in tc_show(ns)


def policy_names(powerstrip: Powerstrip) -> list[str]:
    return [line.split()[0] for line in powerstrip("qos", "list").stdout.splitlines()[1:]]


def test_rate_limit_on_ip_src_and_delete_restores(qos_gateway, client, powerstrip: Powerstrip, iperf: Iperf) -> None:
    for name in ("h1", "h2", "h3"):
        run(qos_gateway, name)
    h1, h2, h3 = (netns(client, n) for n in ("h1", "h2", "h3"))
    a1, a2 = address(client, "h1"), address(client, "h2")
    doc = json.dumps({"name": "limit-h1", "ip-src": a1, "rate": "2mbit"})
    assert powerstrip("qos", "add", "policy", doc).stdout.strip() == "limit-h1"
    listed = powerstrip("qos", "list").stdout
    assert re.search(rf"^limit-h1\s+ip-src={a1}\s+rate=2mbit\s+h1 \(container\)\s+applied\s+-$", listed, re.M), listed

    limited = iperf.mbits(h1, h2, a2)
    assert 1.6 <= limited <= 2.4, f"h1 -> h2 under a 2mbit policy: {limited:.2f} Mbit/s"
    reverse = iperf.mbits(h1, h2, a2, reverse=True)
    other = iperf.mbits(h3, h2, a2)
    assert reverse >= 20 * limited, f"h2 -> h1 (reverse, unlimited): {reverse:.1f} Mbit/s vs {limited:.2f}"
    assert other >= 20 * limited, f"h3 -> h2 (unlimited): {other:.1f} Mbit/s vs {limited:.2f}"

    assert powerstrip("qos", "delete", "limit-h1").stdout.strip() == "limit-h1"
    assert not shaped(h1) and tc_show(h1, "filter") == "" and tc_show(h1, "class") == ""
    restored = iperf.mbits(h1, h2, a2)
    assert restored >= 20 * limited, f"h1 -> h2 after the delete: {restored:.1f} Mbit/s"
    assert policy_names(powerstrip) == []


def test_ip_dst_limits_what_a_container_receives_on_the_host_side(qos_gateway, client, powerstrip: Powerstrip,
                                                                 iperf: Iperf, dockerd) -> None:
    run(qos_gateway, "r1")
    run(qos_gateway, "r2")
    r1, r2 = netns(client, "r1"), netns(client, "r2")
    a2 = address(client, "r2")
    powerstrip("qos", "add", "policy", json.dumps({"name": "to-r2", "ip-dst": a2, "rate": "2mbit"}))
    assert re.search(r"^to-r2\s.*r2 \(host\)\s+applied\s+-$", powerstrip("qos", "list").stdout, re.M)
    assert not shaped(r2)  # the container's own eth0 is untouched: the host end of its veth shapes
    received = iperf.mbits(r1, r2, a2)
    sent = iperf.mbits(r1, r2, a2, reverse=True)
    assert 1.6 <= received <= 2.4 and sent >= 20 * received, (received, sent)
    powerstrip("qos", "delete", "to-r2")
    host = f"/var/run/netns/{dockerd.netns}"
    veths = subprocess.run(in_netns(host, "tc", "qdisc", "show"), capture_output=True, text=True, timeout=10).stdout
    assert "5053:" not in veths


def test_bad_policies_are_refused_and_nothing_is_applied(qos_gateway, client, powerstrip: Powerstrip) -> None:
    run(qos_gateway, "b1")
    b1, a1 = netns(client, "b1"), address(client, "b1")
    bad = {
        '{"name": "x", "ip-src": "%s", "rate": "2mb"}' % a1: "invalid rate '2mb'",
        '{"name": "x", "ip-src": "%s", "rate": "2mbit", "queue": 1}' % a1: "unknown field(s) queue",
        '{"name": "x", "ip-src": "192.168.7.7", "rate": "2mbit"}': "ip-src 192.168.7.7 is not on a powerstrip network",
        '{"name": "x", "dscp": "XX"}': "invalid dscp 'XX'",
        'not json': "not JSON",
    }
    for doc, message in bad.items():
        result = powerstrip("qos", "add", "policy", doc, ok=False)
        assert result.returncode == 1 and message in result.stderr, (doc, result.stderr)
        assert result.stderr.startswith("Error response from daemon: invalid ")
    powerstrip("qos", "add", "policy", json.dumps({"name": "net", "network": "10.0.6.0-24", "rate": "5mbit"}))
    conflict = powerstrip("qos", "add", "policy", json.dumps({"name": "x", "ip-src": a1, "rate": "2mbit"}), ok=False)
    assert "overlaps policy net" in conflict.stderr
    assert policy_names(powerstrip) == ["net"]
    assert len(re.findall(r"class htb 5053:", tc_show(b1, "class"))) == 1  # only the accepted policy's class


def test_policy_for_an_address_nobody_has_yet_applies_when_a_container_gets_it(qos_gateway, client,
                                                                               powerstrip: Powerstrip) -> None:
    powerstrip("network", "create", "later", "10.0.9.0/24")
    powerstrip("qos", "add", "policy", json.dumps({"name": "later", "ip-src": "10.0.9.2", "rate": "3mbit"}))
    assert re.search(r"^later\s.*-\s+waiting: no container matches yet\s+-$", powerstrip("qos", "list").stdout, re.M)
    docker_cli(qos_gateway, "run", "-d", "--name", "l1", "-e", "SP_NETWORK=later", "ubuntu", "sleep", "600")
    l1 = netns(client, "l1")
    wait_until(lambda: "rate 3Mbit" in tc_show(l1, "class"), BOUND, 0.2, "the waiting policy on the new container")


def test_dscp_mark_is_visible_on_the_bridge(qos_gateway, client, powerstrip: Powerstrip, dockerd) -> None:
    run(qos_gateway, "v1")
    run(qos_gateway, "v2")
    v1, a2 = netns(client, "v1"), address(client, "v2")
    doc = {"name": "voice", "ip-dst": "10.0.6.0/24", "protocol": "udp", "tp-dst": 5060, "dscp": "EF"}
    powerstrip("qos", "add", "policy", json.dumps(doc))
    bridge = "br-" + client.networks.get("ps-10.0.6.0-24").id[:12]
    host = f"/var/run/netns/{dockerd.netns}"
    dump = subprocess.Popen(in_netns(host, "tcpdump", "-i", bridge, "-n", "-v", "-l", "-c", "2",
                                     "udp and (dst port 5060 or dst port 5061)"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        time.sleep(1.0)  # tcpdump attaches
        send = ("import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
                f"s.sendto(b'voice', ('{a2}', 5060)); s.sendto(b'other', ('{a2}', 5061))")
        subprocess.run(in_netns(v1, sys.executable, "-c", send), check=True, timeout=10)
        out, err = dump.communicate(timeout=10)
    finally:
        dump.kill()
        dump.wait(5)
    lines = out.splitlines()
    marked = [l for l in lines if "tos 0xb8" in l]  # DSCP EF (46) << 2
    plain = [l for l in lines if "tos 0x0," in l]
    assert len(marked) == 1 and len(plain) == 1, out + err
    powerstrip("qos", "delete", "voice")
    assert subprocess.run(in_netns(v1, "iptables", "-t", "mangle", "-S", "PS-QOS"), capture_output=True,
                          timeout=10).returncode != 0  # the chain is gone


def test_a_root_qdisc_powerstrip_did_not_make_is_left_alone_and_reported(qos_gateway, client,
                                                                         powerstrip: Powerstrip) -> None:
    run(qos_gateway, "f1")
    f1 = netns(client, "f1")
    subprocess.run(in_netns(f1, "tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb"), check=True, timeout=10)
    powerstrip("qos", "add", "policy", json.dumps({"name": "limit-f1", "ip-src": address(client, "f1"), "rate": "2mbit"}))
    listed = powerstrip("qos", "list").stdout
    assert "f1: error: the device has a root qdisc powerstrip did not make (htb 1:): not touched" in listed, listed
    assert "qdisc htb 1: root" in tc_show(f1) and not shaped(f1)


def test_restart_of_powerstrip_keeps_and_repairs_the_limits(qos_gateway, client, powerstrip: Powerstrip,
                                                            iperf: Iperf) -> None:
    run(qos_gateway, "k1")
    run(qos_gateway, "k2")
    k1, k2, a1, a2 = netns(client, "k1"), netns(client, "k2"), address(client, "k1"), address(client, "k2")
    powerstrip("qos", "add", "policy", json.dumps({"name": "limit-k1", "ip-src": a1, "rate": "2mbit"}))
    qos_gateway.stop()
    assert shaped(k1)  # the kernel keeps it while powerstrip is away
    subprocess.run(in_netns(k1, "tc", "qdisc", "del", "dev", "eth0", "root"), check=True, timeout=10)  # lost meanwhile
    qos_gateway.start()
    wait_until(lambda: shaped(k1), BOUND, 0.2, "the restarted gateway to re-apply limit-k1")
    limited = iperf.mbits(k1, k2, a2)
    assert 1.6 <= limited <= 2.4, limited


def test_sp_qos_rate_at_create_time(qos_gateway, client, powerstrip: Powerstrip, iperf: Iperf) -> None:
    refused = docker_cli(qos_gateway, "create", "--name", "q0", "-e", CIDR, "-e", "SP_QOS_RATE=2mb", "ubuntu", ok=False)
    assert "invalid SP_QOS_RATE '2mb'" in refused
    refused = docker_cli(qos_gateway, "create", "--name", "q0", "-e", "SP_QOS_RATE=2mbit", "ubuntu", ok=False)
    assert "set SOCKETPLANE_CIDR or SP_NETWORK too" in refused
    run(qos_gateway, "q2")
    powerstrip("qos", "add", "policy", json.dumps({"name": "everyone", "ip-src": "10.0.6.0/24", "rate": "50mbit"}))
    refused = docker_cli(qos_gateway, "create", "--name", "q0", "-e", CIDR, "-e", "SP_QOS_RATE=2mbit", "ubuntu", ok=False)
    assert "overlaps policy everyone" in refused  # two send limits on one container: refused at create (409)
    powerstrip("qos", "delete", "everyone")
    run(qos_gateway, "q1", "SP_QOS_RATE=2mbit")
    a1, a2 = address(client, "q1"), address(client, "q2")
    listed = powerstrip("qos", "list").stdout
    assert re.search(rf"^q1\s+ip-src={a1} network=\S+\s+rate=2mbit\s+q1 \(container\)\s+applied\s+container q1 \(SP_QOS_RATE\)$", listed, re.M), listed
    limited = iperf.mbits(netns(client, "q1"), netns(client, "q2"), a2)
    assert 1.6 <= limited <= 2.4, limited
    docker_cli(qos_gateway, "rm", "-f", "q1")
    wait_until(lambda: policy_names(powerstrip) == [], BOUND, 0.2, "q1's policy to go with it")


def test_restart_of_the_daemon_reapplies_in_the_new_namespace(qos_gateway, client, powerstrip: Powerstrip,
                                                              dockerd) -> None:
    from tests.integration.net.conftest import restart_dockerd

    run(qos_gateway, "d1")
    powerstrip("qos", "add", "policy", json.dumps({"name": "limit-d1", "ip-src": address(client, "d1"), "rate": "2mbit"}))
    before = netns(client, "d1")
    assert shaped(before)
    restart_dockerd(dockerd)  # the network-only container restarts (restart policy) in a new namespace
    wait_until(lambda: client.containers.get("d1").status == "exited", 30, 0.2, "d1 stopped by the restart")
    docker_cli(qos_gateway, "start", "d1")
    after = netns(client, "d1")
    assert after != before  # another process: a new namespace
    wait_until(lambda: shaped(after), BOUND, 0.2, "the policy in the namespace the restarted daemon made")

"""QoS figures: how exact the limits are (measured/asked at 1, 10 and 100 Mbit/s), what unlimited
traffic loses with the QoS machinery on its path, and what the converger costs while idle.

    sudo .venv/bin/python -m bench.qos [--seconds 5] [--rounds 3]      (make bench-qos)

A private dockerd in its own network namespace, a gateway with the net and qos adapters in that
namespace (examples/qos.yml), four containers on one network, iperf3 (TCP, one stream) run in the
containers' namespaces with nsenter. The unlimited figure compares qc -> qb, whose path has an HTB
tree on both ends (qc's eth0 and qb's host-side veth, from two policies that match UDP only: the TCP
stream is looked at by the u32 filters and leaves by HTB's direct queue), with qa -> qd, whose path
has none, in back-to-back pairs in alternating order; the per-pair ratios cancel most of what other
load on the machine does to both.

The limits are enforced on whole frames (Ethernet + IP + TCP headers), iperf3 counts payload: with
1448 payload bytes in a 1514-byte frame, a shaper that is exact shows measured/asked = 0.956.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from harness.cli import NEW_CLI, run_docker
from harness.dockerd import PrivateDockerd
from harness.image import build_test_image
from harness.net import clean_daemon
from harness.qos import Iperf, Powerstrip, QosGateway

RATES = ("1mbit", "10mbit", "100mbit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of each iperf3 run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the with/without comparison")
    args = parser.parse_args()
    if shutil.which("iperf3") is None:
        sys.exit("bench.qos needs iperf3 on the host (Debian package iperf3)")
    import docker

    dockerd = PrivateDockerd().start()
    state = Path(dockerd.dir) / "qos-state"
    box = QosGateway(dockerd, state)
    iperf = Iperf()
    client = docker.DockerClient(base_url=dockerd.url, timeout=60)
    try:
        build_test_image(dockerd.url)
        gw = box.start()
        ps = Powerstrip(dockerd.netns, dockerd.url, state)
        ns, addr = {}, {}
        for name in ("qa", "qb", "qc", "qd"):
            result = run_docker(gw.url, "run", "-d", "--name", name, "-e", "SOCKETPLANE_CIDR=10.0.6.1/24", "ubuntu",
                                "sleep", "3600", docker=NEW_CLI)
            assert result.rc == 0, str(result)
            found = client.containers.get(name)
            ns[name] = f"/proc/{found.attrs['State']['Pid']}/ns/net"
            out = found.exec_run(["ip", "-4", "-o", "addr", "show", "eth0"]).output.decode()
            addr[name] = out.split("inet ")[1].split("/")[0]

        accuracy = []
        for rate in RATES:
            ps("qos", "add", "policy", json.dumps({"name": "limit-a", "ip-src": addr["qa"], "rate": rate}))
            measured = iperf.mbits(ns["qa"], ns["qb"], addr["qb"], seconds=args.seconds)
            asked = float(rate.removesuffix("mbit"))
            accuracy.append((rate, measured, measured / asked))
            ps("qos", "delete", "limit-a")

        machinery = [{"name": "udp-from-c", "ip-src": addr["qc"], "protocol": "udp", "rate": "1mbit"},
                     {"name": "udp-to-b", "ip-dst": addr["qb"], "protocol": "udp", "rate": "1mbit"}]
        for doc in machinery:
            ps("qos", "add", "policy", json.dumps(doc))
        without, with_ = [], []
        for i in range(args.rounds):  # alternating order, so that neither side always runs first
            for which in ((0, 1) if i % 2 == 0 else (1, 0)):
                if which:
                    with_.append(iperf.mbits(ns["qc"], ns["qb"], addr["qb"], seconds=args.seconds))
                else:
                    without.append(iperf.mbits(ns["qa"], ns["qd"], addr["qd"], seconds=args.seconds))

        pid, idle = gw.proc.pid, 20.0
        before = _cpu_seconds(pid)
        time.sleep(idle)
        cpu = (_cpu_seconds(pid) - before) / idle
    finally:
        iperf.stop()
        box.stop()
        try:
            clean_daemon(client)
        finally:
            client.close()
            dockerd.stop()

    print(f"limit accuracy (TCP, 1 stream, {args.seconds} s each; measured by the receiver):")
    for rate, measured, ratio in accuracy:
        print(f"  {rate:>8}: {measured:8.3f} Mbit/s  measured/asked {ratio:.3f}")
    ratios = [w / b for w, b in zip(with_, without)]
    print(f"unlimited traffic, {args.rounds} pairs of {args.seconds} s runs: qc -> qb through an HTB tree on both ends "
          f"(not matching it) vs qa -> qd with none")
    print(f"  median with/without per pair {statistics.median(ratios):.3f} "
          f"({100 * (1 - statistics.median(ratios)):+.1f} % lost); range {min(ratios):.2f} .. {max(ratios):.2f}")
    print(f"  Mbit/s with: {', '.join(f'{v:.0f}' for v in with_)}; without: {', '.join(f'{v:.0f}' for v in without)}")
    print(f"gateway CPU while idle (passes every 2 s, 4 containers, 2 policies): {100 * cpu:.1f} % of a core")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()

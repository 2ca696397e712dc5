"""Multi-host networking figures: overlay vs same-host throughput, create-to-reachable time, allocation rate,
name lookup latency (same-host name, answered by Docker, vs a name on another host, answered by
powerstrip's resolver), time to reclaim a lost host's addresses.

    sudo .venv/bin/python -m bench.multihost [--seconds 5] [--rounds 5] [--allocators 3] [--allocations 200] [--grace 5]

Runs on simulated hosts (harness/multihost.py: network namespaces on an underlay bridge, a
dockerd and a ``powerstrip serve --cluster`` in each, a real etcd). Throughput is measured with the
host's iperf3 run inside the containers' network namespaces (``nsenter --net`` into the network-only
container that holds it): the test image has no iperf3 and there is no static build of it to copy in,
and entering the namespace measures exactly the container's path (veth, bridge, VXLAN, underlay).
The simulated hosts' underlay veths have GRO on, as real NICs do.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from ipaddress import IPv4Network

from harness.multihost import Cluster, SimHost
from harness.util import wait_until
from powerstrip.adapters.net.etcd_client import Etcd
from powerstrip.adapters.net.etcd_store import EtcdStore

LOOP = ["/bin/sh", "-c", "while true; do sleep 1; done"]


def start(host: SimHost, name: str, network: str) -> str:
    host.docker("run", "-d", "--name", name, "-e", f"SP_NETWORK={network}", "ubuntu", *LOOP)
    out = host.docker("exec", name, "ip", "-4", "-o", "addr", "show", "eth0").stdout
    return out.split("inet ")[1].split("/")[0]


def netns_of(host: SimHost, name: str) -> str:
    """The network namespace a container runs in: its network-only container's."""
    mode = host.docker("inspect", "-f", "{{.HostConfig.NetworkMode}}", name).stdout.strip()
    pid = host.docker("inspect", "-f", "{{.State.Pid}}", mode.removeprefix("container:")).stdout.strip()
    return f"/proc/{pid}/ns/net"


def throughput(server_ns: str, address: str, client_ns: str, seconds: int) -> float:
    """TCP goodput from client to server in Gbit/s (iperf3, one stream)."""
    server = subprocess.Popen(["nsenter", f"--net={server_ns}", "iperf3", "-s", "-1", "-p", "5201"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        out = subprocess.run(["nsenter", f"--net={client_ns}", "iperf3", "-c", address, "-p", "5201", "-t", str(seconds),
                              "-J"], capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9
    finally:
        server.wait(10)


def create_to_reachable(h1: SimHost, h2: SimHost, prober: str, rounds: int) -> list[float]:
    """Seconds from ``docker run`` on host 2 until host 1's container gets a ping answer from it."""
    times = []
    for i in range(rounds):
        began = time.monotonic()
        address = start(h2, f"probe-{i}", "bench")

        def answers() -> bool:
            return h1.docker("exec", prober, "ping", "-c", "1", "-W", "1", address, check=False).returncode == 0

        wait_until(answers, 30, 0.05, f"probe-{i} to answer")
        times.append(time.monotonic() - began)
        h2.docker("rm", "-f", f"probe-{i}")
    return times


def _allocate(endpoint: tuple[str, int], host: str, count: int) -> list[str]:
    store = EtcdStore(Etcd((endpoint,)), host)
    return [str(store.allocate("alloc", f"{host}-{i}").address) for i in range(count)]


def allocation_rate(endpoint: tuple[str, int], allocators: int, each: int) -> tuple[float, int, int]:
    """(allocations per second, allocations, distinct addresses) for concurrent allocator processes."""
    store = EtcdStore(Etcd((endpoint,)), "bench")
    store.create_network("alloc", IPv4Network("10.60.0.0/16"))
    hosts = [f"bench-{i}" for i in range(allocators)]
    began = time.monotonic()
    with ProcessPoolExecutor(allocators) as pool:
        chunks = list(pool.map(_allocate, [endpoint] * allocators, hosts, [each] * allocators))
    elapsed = time.monotonic() - began
    addresses = [a for chunk in chunks for a in chunk]
    for allocation in store.allocations("alloc"):
        store.release(allocation.owner)
    store.delete_network("alloc")
    return len(addresses) / elapsed, len(addresses), len(set(addresses))


def lookup_latencies(namespace: str, name: str, count: int) -> list[float]:
    """Seconds per lookup of ``name`` from inside ``namespace`` through Docker's embedded DNS."""
    out = subprocess.run(["nsenter", f"--net={namespace}", sys.executable, "-m", "bench.dns_probe", name, str(count)],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return json.loads(out)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def reclaim_time(store: EtcdStore, lost: SimHost) -> tuple[float, float, int]:
    """Kill ``lost``'s powerstrip: (seconds until its lease is gone, until its addresses are freed, how many)."""
    held = sum(a.host == lost.address for a in store.allocations())
    began = time.monotonic()
    lost.stop_powerstrip(kill=True)
    wait_until(lambda: lost.address not in {m.address for m in store.members()}, 60, 0.1, "the lease to expire")
    expired = time.monotonic() - began
    wait_until(lambda: all(a.host != lost.address for a in store.allocations()), 120, 0.1, "the addresses to be freed")
    return expired, time.monotonic() - began, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of each iperf3 run")
    parser.add_argument("--rounds", type=int, default=5, help="create-to-reachable samples")
    parser.add_argument("--allocators", type=int, default=3, help="concurrent allocator processes")
    parser.add_argument("--allocations", type=int, default=200, help="allocations per allocator")
    parser.add_argument("--lookups", type=int, default=500, help="name lookups per kind")
    parser.add_argument("--grace", type=int, default=5, help="--lost-host-grace of the simulated hosts (seconds)")
    args = parser.parse_args()
    if shutil.which("iperf3") is None:
        sys.exit("bench.multihost needs iperf3 on the host (Debian package iperf3)")

    cluster = Cluster(2).start()
    try:
        h1, h2 = cluster.hosts
        endpoint = (cluster.etcd.host, cluster.etcd.port)
        # before the gateways start: their housekeeping would take these hosts without a lease for lost ones
        rate, total, distinct = allocation_rate(endpoint, args.allocators, args.allocations)
        for host in (h1, h2):
            host.start_powerstrip("--log-level", "info", "--lost-host-grace", str(args.grace))
        h1.powerstrip("network", "create", "bench", "10.50.0.0/16")
        start(h1, "bench-a", "bench")
        same = start(h1, "bench-b", "bench")
        remote = start(h2, "bench-c", "bench")
        wait_until(lambda: h1.docker("exec", "bench-a", "ping", "-c", "1", "-W", "1", remote, check=False).returncode == 0,
                   30, 0.2, "the overlay to carry a ping")
        a_ns = netns_of(h1, "bench-a")
        local = throughput(netns_of(h1, "bench-b"), same, a_ns, args.seconds)
        overlay = throughput(netns_of(h2, "bench-c"), remote, a_ns, args.seconds)
        times = create_to_reachable(h1, h2, "bench-a", args.rounds)
        wait_until(lambda: h1.docker("exec", "bench-a", "nslookup", "bench-c", check=False).returncode == 0, 30, 0.2,
                   "bench-c's name to resolve on host 1")
        same_host = lookup_latencies(a_ns, "bench-b", args.lookups)
        cross_host = lookup_latencies(a_ns, "bench-c", args.lookups)
        expired, reclaimed, held = reclaim_time(EtcdStore(Etcd((endpoint,)), "bench"), h2)
    finally:
        cluster.stop()
        left = cluster.leftovers()
        if left:
            print(f"WARNING: left behind: {left}", file=sys.stderr)

    print(f"TCP throughput, same-host bridge:      {local:6.2f} Gbit/s (iperf3, 1 stream, {args.seconds} s)")
    print(f"TCP throughput, across hosts (VXLAN):  {overlay:6.2f} Gbit/s ({overlay / local:.2f} of same-host)")
    print(f"create to reachable peer (docker run on host 2 → ping from host 1): "
          f"median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s ({len(times)} runs)")
    for label, values in (("same host (Docker's DNS)", same_host), ("other host (powerstrip)", cross_host)):
        print(f"name lookup, {label}: p50 {percentile(values, 0.5) * 1e3:.2f} ms, "
              f"p99 {percentile(values, 0.99) * 1e3:.2f} ms ({len(values)} lookups)")
    print(f"allocations: {total} by {args.allocators} concurrent processes, {rate:.0f}/s, "
          f"{distinct} distinct ({total - distinct} duplicates)")
    print(f"lost host (powerstrip killed): lease gone after {expired:.1f} s, its {held} address(es) reclaimed after "
          f"{reclaimed:.1f} s (lease 10 s + --lost-host-grace {args.grace} s)")


if __name__ == "__main__":
    main()

"""Simulated Docker hosts on one machine, for multi-host networking: an underlay, etcd, hosts.

- ``Underlay``: a Linux bridge in the root namespace with a /24 out of 198.18.0.0/15 (picked at
  random per run, so parallel runs do not clash); its ``.1`` carries the etcd server.
- ``SimHost``: a network namespace with a private dockerd (``PrivateDockerd``), a veth into the
  underlay (``.N``), and a ``powerstrip serve --cluster ...`` started inside the namespace with
  ``nsenter --net`` (so its netlink calls program that "host's" kernel).
- ``Cluster``: all of it (``secure=True``: etcd with TLS, client certificates and a user, and every
  host's powerstrip given them through the environment), with ``stop()`` that removes every namespace, bridge, rule and process
  and ``leftovers()`` that says what is still there (the tests assert it is nothing).
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Network
from pathlib import Path

from .certs import CertificateAuthority
from .dockerd import PrivateDockerd
from .etcd import EtcdServer, ServerTLS
from .gateway import Gateway
from .image import build_test_image
from .util import pids_mentioning, remove_tree

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG = REPO_ROOT / "examples" / "socketplane.yml"
UNDERLAY_RANGE = IPv4Network("198.18.0.0/15")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def _iptables_forward(bridge: str, action: str) -> None:
    # A dockerd in the root namespace sets FORWARD to DROP; the underlay must still switch.
    subprocess.run(["iptables", action, "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"],
                   capture_output=True, timeout=30)


def _enable_gro(device: str) -> None:
    """GRO on a veth of the underlay, as a real NIC has: received VXLAN packets are merged again."""
    from pyroute2.ethtool import Ethtool

    ethtool = Ethtool()
    try:
        features = ethtool.get_features(device)
        features.features["rx-gro"].enable = True
        ethtool.set_features(device, features)
    finally:
        ethtool.close()


class Underlay:
    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.bridge = f"psu{self.tag}"
        in_use = {IPv4Network(word, strict=False) for word in _ip("-4", "-o", "route", "show").stdout.split()
                  if "/" in word and word[0].isdigit()}
        subnets = [n for n in UNDERLAY_RANGE.subnets(new_prefix=24) if not any(n.overlaps(u) for u in in_use)]
        self.subnet = random.choice(subnets)  # another run (or session) on this machine may have one too
        self.gateway = str(self.subnet.network_address + 1)
        self._up = False
        self._veths: list[str] = []

    def address(self, index: int) -> str:
        return str(self.subnet.network_address + index)

    def start(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        self._up = True
        _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        _iptables_forward(self.bridge, "-I")

    def plug(self, netns: str, index: int) -> str:
        """A veth from the bridge into ``netns`` with address ``.index``; returns that address."""
        outside, inside = f"psu{self.tag}h{index}", f"psut{index}"
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        self._veths.append(outside)
        _ip("link", "set", outside, "master", self.bridge, "up")
        _ip("link", "set", inside, "netns", netns)
        address = self.address(index)
        _ip("-n", netns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", inside)
        _ip("-n", netns, "link", "set", inside, "up")
        _enable_gro(outside)
        subprocess.run(["nsenter", f"--net=/var/run/netns/{netns}", sys.executable, "-c",
                        f"from harness.multihost import _enable_gro; _enable_gro({inside!r})"],
                       check=True, timeout=30, cwd=REPO_ROOT)
        return address

    def stop(self) -> None:
        for veth in self._veths:  # usually gone with its namespace, but the kernel does that lazily
            _ip("link", "del", veth, check=False)
        self._veths.clear()
        if self._up:
            _iptables_forward(self.bridge, "-D")
            _ip("link", "del", self.bridge, check=False)
            self._up = False


class SimHost:
    """One simulated Docker host: netns + dockerd + (when started) powerstrip with the cluster store."""

    def __init__(self, underlay: Underlay, index: int, cluster_url: str, store_env: dict[str, str] | None = None) -> None:
        self.underlay = underlay
        self.index = index
        self.name = f"host{index - 1}"  # hosts are .2, .3, ... on the underlay: host1, host2, ...
        self.cluster_url = cluster_url
        self.store_env = dict(store_env or {})  # POWERSTRIP_CLUSTER_CACERT, ... for a secured store
        self.dockerd = PrivateDockerd()
        self.address: str | None = None
        self.gateway: Gateway | None = None
        self.dirs: list[str] = []  # every temp dir a process of this host ran in (for the leftover check)

    @property
    def netns(self) -> str:
        return self.dockerd.netns

    def start_dockerd(self) -> None:
        self.dockerd.start()
        self.address = self.underlay.plug(self.netns, self.index)
        build_test_image(self.dockerd.url)

    def start_powerstrip(self, *extra: str, config: Path = CONFIG) -> Gateway:
        command = ["nsenter", f"--net=/var/run/netns/{self.netns}", sys.executable, "-m", "powerstrip"]
        self.gateway = Gateway(self.dockerd.url, config=config, command=command, env=self.store_env,
                               extra_args=["--cluster", self.cluster_url, *extra], start_timeout=60.0)
        try:
            self.gateway.start()
        finally:
            if self.gateway.dir:
                self.dirs.append(self.gateway.dir)
        return self.gateway

    def stop_powerstrip(self, kill: bool = False) -> None:
        if self.gateway is not None:
            if kill and self.gateway.proc is not None and self.gateway.proc.poll() is None:
                self.gateway.proc.kill()
                self.gateway.proc.wait(10)
            self.gateway.stop()
            self.gateway = None

    def docker(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        """The docker CLI through this host's powerstrip."""
        assert self.gateway is not None, "powerstrip is not running on this host"
        env = dict(os.environ, DOCKER_HOST=self.gateway.url)
        env.pop("DOCKER_CONTEXT", None)
        result = subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} on {self.name}: {result.stderr.strip()}")
        return result

    def powerstrip(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """The powerstrip CLI in this host's namespace, against its dockerd and the cluster store."""
        argv = ["nsenter", f"--net=/var/run/netns/{self.netns}", sys.executable, "-m", "powerstrip", *args]
        env = dict(os.environ, POWERSTRIP_CLUSTER=self.cluster_url, POWERSTRIP_DOCKER_HOST=self.dockerd.url,
                   PYTHONPATH=str(REPO_ROOT), **self.store_env)
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"powerstrip {' '.join(args)} on {self.name}: {result.stderr.strip()}")
        return result

    def dockerd_networks(self) -> list[str]:
        """The names of the Docker networks on this host's daemon (asked directly, not through powerstrip)."""
        env = dict(os.environ, DOCKER_HOST=self.dockerd.url)
        out = subprocess.run(["docker", "network", "ls", "--format", "{{.Name}}"], capture_output=True, text=True,
                             env=env, timeout=30, check=True).stdout
        return out.split()

    def ns(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """A command in this host's network namespace (ip, bridge, ...)."""
        return subprocess.run(["nsenter", f"--net=/var/run/netns/{self.netns}", *argv],
                              capture_output=True, text=True, timeout=timeout)

    def stop(self) -> None:
        self.stop_powerstrip()
        self.dockerd.stop()  # removes its containers, the namespace and with it our veth end


class Cluster:
    def __init__(self, hosts: int, secure: bool = False) -> None:
        self.underlay = Underlay()
        self.etcd: EtcdServer | None = None
        self.hosts: list[SimHost] = []
        self.secure = secure
        self.store_env: dict[str, str] = {}
        self._pki: str | None = None
        self._count = hosts
        self._netns: list[str] = []
        self._dirs: list[str] = []

    def start(self) -> "Cluster":
        try:
            self.underlay.start()
            self.etcd = self._secured_etcd() if self.secure else EtcdServer(host=self.underlay.gateway, port=2379).start()
            self._dirs.append(self.etcd.dir or "")
            self.hosts = [SimHost(self.underlay, i + 2, self.etcd.url, self.store_env) for i in range(self._count)]
            with ThreadPoolExecutor(len(self.hosts)) as pool:
                list(pool.map(SimHost.start_dockerd, self.hosts))
            for host in self.hosts:
                self._netns.append(host.netns)
                host.dirs.append(host.dockerd.dir or "")
        except BaseException:
            self.stop()
            raise
        return self

    def _secured_etcd(self) -> EtcdServer:
        """etcd with TLS, client certificates required and a ``powerstrip`` user (its certificates in a temp dir)."""
        import requests

        from powerstrip.adapters.net.etcd_store import PREFIX

        self._pki = tempfile.mkdtemp(prefix="psk-", dir="/tmp")
        self._dirs.append(self._pki)
        ca = CertificateAuthority(Path(self._pki), "cluster")
        server, client = ca.issue("etcd", ips=(self.underlay.gateway,)), ca.issue("powerstrip", client=True)
        etcd = EtcdServer(host=self.underlay.gateway, port=2379, tls=ServerTLS(
            str(server.cert), str(server.key), str(ca.cert), str(ca.cert), (str(client.cert), str(client.key)))).start()
        password = secrets.token_hex(8)
        with requests.Session() as admin:
            admin.verify, admin.cert, admin.trust_env = str(ca.cert), (str(client.cert), str(client.key)), False
            etcd.enable_auth(admin, {"powerstrip": password}, PREFIX)
        self.store_env = {"POWERSTRIP_CLUSTER_CACERT": str(ca.cert), "POWERSTRIP_CLUSTER_CERT": str(client.cert),
                          "POWERSTRIP_CLUSTER_KEY": str(client.key), "POWERSTRIP_CLUSTER_USER": "powerstrip",
                          "POWERSTRIP_CLUSTER_PASSWORD": password}
        return etcd

    def stop(self) -> None:
        with ThreadPoolExecutor(max(1, len(self.hosts))) as pool:
            list(pool.map(SimHost.stop, self.hosts))
        if self.etcd is not None:
            self.etcd.stop()
        self.underlay.stop()
        if self._pki is not None:
            remove_tree(self._pki)
            self._pki = None

    def leftovers(self) -> list[str]:
        """What ``stop()`` should have removed and did not: namespaces, links, processes, dirs."""
        found = []
        namespaces = set(_ip("netns", "list").stdout.split())
        found += [f"netns {n}" for n in self._netns if n in namespaces]
        links = _ip("-o", "link", "show").stdout
        found += [f"link {name}" for name in links.split() if name.rstrip(":@").startswith(f"psu{self.underlay.tag}")]
        for d in filter(None, self._dirs + [d for h in self.hosts for d in h.dirs]):
            found += [f"process {pid} ({d})" for pid in pids_mentioning(d)]
            if os.path.exists(d):
                found.append(f"directory {d}")
        rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True, timeout=30).stdout
        if self.underlay.bridge in rules:
            found.append(f"iptables rule for {self.underlay.bridge}")
        return found

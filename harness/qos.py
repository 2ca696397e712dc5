"""QoS on one host, as the qos tests and ``bench.qos`` run it: a gateway with the ``net`` and ``qos``
adapters in the Docker daemon's network namespace (where the host ends of the containers' veths are),
the ``powerstrip`` CLI beside it, and real iperf3 traffic between network namespaces (nsenter)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .gateway import REPO_ROOT, Gateway
from .util import HarnessError, apt_install, terminate

CONFIG = REPO_ROOT / "examples" / "qos.yml"
IPERF_SECONDS = 3


def ensure_tools() -> None:
    """iperf3 and tcpdump (scripts/install-deps.sh installs them; installed here when missing)."""
    missing = [pkg for tool, pkg in (("iperf3", "iperf3"), ("tcpdump", "tcpdump")) if shutil.which(tool) is None]
    if missing:
        apt_install(missing)


def in_netns(netns: str, *argv: str) -> list[str]:
    return ["nsenter", f"--net={netns}", *argv]


@dataclass
class Powerstrip:
    """``python -m powerstrip`` in the daemon's namespace, with the gateway's daemon and state directory."""

    netns: str
    docker_url: str
    state_dir: Path

    def __call__(self, *args: str, ok: bool | None = True) -> subprocess.CompletedProcess[str]:
        argv = in_netns(f"/var/run/netns/{self.netns}", sys.executable, "-m", "powerstrip", *args,
                        "--docker", self.docker_url, "--state-dir", str(self.state_dir))
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
                                env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
        if ok is not None:
            assert (result.returncode == 0) == ok, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result


class Iperf:
    """Short iperf3 TCP runs between two network namespaces; every server it starts is stopped."""

    def __init__(self) -> None:
        self._servers: list[subprocess.Popen] = []

    def mbits(self, client_ns: str, server_ns: str, server_address: str, reverse: bool = False,
              seconds: int = IPERF_SECONDS, udp_rate: str | None = None) -> float:
        """Mbit/s the receiving side counted: client → server (or server → client with ``reverse``)."""
        port = random.randint(20000, 40000)
        server = subprocess.Popen(in_netns(server_ns, "iperf3", "-s", "-1", "-p", str(port)),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self._servers.append(server)
        try:
            argv = ["iperf3", "-c", server_address, "-p", str(port), "-t", str(seconds), "-J", "--connect-timeout", "2000"]
            if reverse:
                argv.append("-R")
            if udp_rate:
                argv += ["-u", "-b", udp_rate]
            for _ in range(20):  # the server may not listen yet
                result = subprocess.run(in_netns(client_ns, *argv), capture_output=True, text=True, timeout=seconds + 20)
                report = json.loads(result.stdout or "{}")
                if "error" not in report and result.returncode == 0:
                    end = report["end"]
                    summary = end.get("sum_received") or end["sum"]
                    return summary["bits_per_second"] / 1e6
                if "refused" not in report.get("error", ""):
                    raise HarnessError(f"iperf3 failed: {report.get('error') or result.stderr}")
                time.sleep(0.1)
            raise HarnessError("the iperf3 server never listened")
        finally:
            terminate(server, term_timeout=5)

    def stop(self) -> None:
        for server in self._servers:
            terminate(server, term_timeout=5)


class QosGateway:
    """A gateway with the net and qos adapters in the daemon's namespace; ``restart`` keeps its state."""

    def __init__(self, dockerd, state_dir: Path) -> None:
        self.dockerd = dockerd
        self.state_dir = state_dir
        self.gw: Gateway | None = None

    def start(self) -> Gateway:
        self.gw = Gateway(self.dockerd.url, config=CONFIG, state_dir=str(self.state_dir),
                          command=in_netns(f"/var/run/netns/{self.dockerd.netns}", sys.executable, "-m", "powerstrip"))
        return self.gw.start()

    def stop(self) -> None:
        if self.gw is not None:
            self.gw.stop()
            self.gw = None

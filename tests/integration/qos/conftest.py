"""Fixtures for QoS end to end on one host (harness/qos.py): a gateway with the ``net`` and ``qos`` adapters
in the Docker daemon's network namespace, the ``powerstrip qos`` CLI beside it, iperf3 between namespaces."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from harness.net import clean_daemon
from harness.qos import Iperf, Powerstrip, QosGateway, ensure_tools


@pytest.fixture
def iperf() -> Iterator[Iperf]:
    ensure_tools()
    runner = Iperf()
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture
def client(dockerd) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=dockerd.url, timeout=60)
    try:
        yield c
    finally:
        clean_daemon(c, dockerd)  # containers (and with them their namespaces, veths and qdiscs) and networks
        c.close()


@pytest.fixture
def qos_gateway(dockerd, client, tmp_path, request) -> Iterator[QosGateway]:
    ensure_tools()
    box = QosGateway(dockerd, tmp_path / "state")
    box.start()
    try:
        yield box
    finally:
        if box.gw is not None:
            box.gw.stop(remove_dir=False)
            failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))
            if failed:
                print(f"\n===== qos gateway log tail =====\n{box.gw.log_tail(80)}")
            box.gw.cleanup()


@pytest.fixture
def powerstrip(dockerd, tmp_path) -> Powerstrip:
    return Powerstrip(dockerd.netns, dockerd.url, tmp_path / "state")

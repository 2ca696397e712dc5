"""Three simulated hosts on an underlay with a real etcd, shared by the module's tests (see
harness/multihost.py). powerstrip runs on hosts 1 and 2 from the start; host 3 has its
dockerd ready and joins in a test. The teardown asserts that nothing is left behind."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from harness.multihost import Cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if os.environ.get("POWERSTRIP_SKIP_DOCKER"):
        pytest.skip("POWERSTRIP_SKIP_DOCKER is set")
    made = Cluster(3).start()
    try:
        for host in made.hosts[:2]:
            host.start_powerstrip()
        yield made
    finally:
        made.stop()
    left = made.leftovers()
    assert not left, f"the multi-host harness left behind: {left}"


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))
    if failed and "cluster" in request.fixturenames:
        for host in request.getfixturevalue("cluster").hosts:
            if host.gateway is not None:
                print(f"\n===== {host.name} powerstrip log tail =====\n{host.gateway.log_tail(60)}")

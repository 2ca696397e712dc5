"""Shared fixtures: a private dockerd with the test image, and powerstrip gateways in front of it.

- ``dockerd`` (session): a PrivateDockerd in its own network namespace, with ``ps-busybox:latest``
  (also tagged ``ubuntu:latest``) imported. Started only when a test asks for it.
- ``gateway`` (function) / ``module_gateway`` (module): a pass-through powerstrip in front of it.
- ``make_gateway(config_text_or_path=None, **kwargs)``: a gateway with a config; every one made is
  stopped at the end of the test.
On a failing test the gateway's log tail is printed (shown by pytest under "Captured stdout teardown").
"""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path

import pytest

from harness.cli import cleanup_cli_config
from harness.compare import Sides, remove_everything_named
from harness.dockerd import PrivateDockerd
from harness.gateway import Gateway
from harness.image import build_test_image


def pytest_configure(config: pytest.Config) -> None:
    # A SIGTERM (CI timeout, a killed make) should still run the fixtures' cleanup.
    def _on_term(signum, frame):
        # once: a second SIGTERM (e.g. from a wrapper forwarding it) must not interrupt the cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt(f"signal {signum}")
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_term)


def pytest_unconfigure(config: pytest.Config) -> None:
    cleanup_cli_config()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


def _failed(request: pytest.FixtureRequest) -> bool:
    node = request.node
    return any(getattr(getattr(node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))


def _dump_logs(gw: Gateway, label: str = "gateway") -> None:
    print(f"\n===== {label} log tail ({' '.join(gw.argv())}) =====")
    print(gw.log_tail(120))


@pytest.fixture(scope="session")
def dockerd():
    if os.environ.get("POWERSTRIP_SKIP_DOCKER"):
        pytest.skip("POWERSTRIP_SKIP_DOCKER is set")
    d = PrivateDockerd()
    try:
        d.start()
        d.image_id = build_test_image(d.url)
        yield d
    finally:
        d.stop()


@pytest.fixture
def gateway(dockerd, request):
    gw = Gateway(dockerd.url)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop(remove_dir=False)
        if _failed(request):
            _dump_logs(gw)
        gw.cleanup()


@pytest.fixture(scope="module")
def module_gateway(dockerd):
    gw = Gateway(dockerd.url)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def make_gateway(dockerd, request, tmp_path_factory):
    """Factory: ``make_gateway(config=None, **Gateway kwargs)``. ``config`` may be YAML text or a path."""
    made: list[Gateway] = []

    def make(config: str | os.PathLike | None = None, **kwargs) -> Gateway:
        path = None
        if config is not None:
            if isinstance(config, os.PathLike) or ("\n" not in str(config) and Path(str(config)).exists()):
                path = str(config)
            else:
                d = tmp_path_factory.mktemp("cfg")
                path = str(d / "adapters.yml")
                Path(path).write_text(str(config))
        kwargs.setdefault("docker_url", dockerd.url)
        gw = Gateway(config=path, **kwargs)
        made.append(gw)
        gw.start()
        return gw

    try:
        yield make
    finally:
        failed = _failed(request)
        for i, gw in enumerate(made):
            gw.stop(remove_dir=False)
            if failed:
                _dump_logs(gw, f"gateway #{i}")
            gw.cleanup()


@pytest.fixture
def uniq() -> str:
    """A short random suffix for names of containers, networks, volumes made by one test."""
    return secrets.token_hex(4)


@pytest.fixture
def sides(dockerd, gateway, uniq):
    """The same scenario run directly against dockerd and through a pass-through gateway; everything
    named ``pst-<uniq>...`` is removed afterwards."""
    s = Sides(dockerd.url, gateway.url, uniq)
    try:
        yield s
    finally:
        remove_everything_named(dockerd.url, f"pst-{uniq}")

"""Fixtures for host-aware rules: a real gmond, bounded CPU burners, the ``powerstrip`` CLI, and
helpers to read the messages and the gateway's metrics listener."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from harness.gateway import REPO_ROOT, free_tcp_port
from harness.gmond import Gmond
from harness.util import terminate, wait_until

BURN_SECONDS = 90  # the longest a burner may run, whatever happens to the test


class Powerstrip:
    """``python -m powerstrip ...`` with the gateway's state directory (or cluster) appended."""

    def __init__(self, *options: str) -> None:
        self.options = list(options)

    def __call__(self, *args: str, ok: bool | None = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "powerstrip", *args, *self.options],
                                capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
        if ok is not None:
            assert (result.returncode == 0) == ok, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    def messages(self, *args: str) -> list[dict]:
        out = self("messages", "--json", "--tail", "1000", *args).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def wait_message(self, level: str, rule: str | None = None, timeout: float = 60.0, *args: str,
                     predicate: Callable[[dict], bool] = lambda message: True) -> dict:
        """The first message of ``level`` (and ``rule``) that satisfies ``predicate``, waiting for it."""
        found: list[dict] = []

        def seen() -> bool:
            found[:] = [m for m in self.messages(*args)
                        if m["level"] == level and (rule is None or m["rule"] == rule) and predicate(m)]
            return bool(found)

        wait_until(seen, timeout, 0.25, f"a {level} message of rule {rule}")
        return found[0]


class Burner:
    """``n`` processes spinning on a CPU each, killed on ``stop`` (and after BURN_SECONDS at the latest)."""

    def __init__(self, n: int) -> None:
        self.procs = [subprocess.Popen(["timeout", str(BURN_SECONDS), sys.executable, "-c", "while True: pass"],
                                       start_new_session=True) for _ in range(n)]

    def stop(self) -> None:
        for proc in self.procs:
            terminate(proc, term_timeout=2.0)
        self.procs = []


@pytest.fixture
def burner() -> Iterator[type[Burner]]:
    made: list[Burner] = []

    def make(n: int) -> Burner:
        b = Burner(n)
        made.append(b)
        return b

    yield make  # type: ignore[misc]
    for b in made:
        b.stop()


@pytest.fixture
def gmond() -> Iterator[Gmond]:
    with Gmond() as g:
        yield g


@pytest.fixture
def client(dockerd) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=dockerd.url, timeout=60)
    yield c
    for container in c.containers.list(all=True, filters={"label": "powerstrip-test=hostaware"}):
        container.remove(force=True)
    c.close()


@pytest.fixture
def state_dir(tmp_path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def powerstrip(state_dir) -> Powerstrip:
    return Powerstrip("--state-dir", str(state_dir))


class Ops:
    """The gateway's metrics listener (tcp on loopback)."""

    def __init__(self) -> None:
        self.port = free_tcp_port()

    @property
    def listen(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as answer:
            return answer.read()

    def json(self, path: str) -> dict:
        return json.loads(self.get(path))


@pytest.fixture
def ops() -> Ops:
    return Ops()


def create(gw_url: str, name: str) -> tuple[int, str, float]:
    """``POST /containers/create`` through the gateway with the Docker SDK: (status, message, seconds)."""
    c = docker.DockerClient(base_url=gw_url, timeout=30)
    started = time.monotonic()
    try:
        c.containers.create("ps-busybox:latest", ["sleep", "30"], name=name, labels={"powerstrip-test": "hostaware"})
        return 201, "", time.monotonic() - started
    except docker.errors.APIError as exc:
        return exc.status_code, str(exc.explanation), time.monotonic() - started
    finally:
        c.close()


"""Which daemon a running gateway forwards to, left in its state directory for the other commands.

``powerstrip serve`` writes ``<state-dir>/gateway.json``; ``powerstrip network ...``/``info`` read it
when neither ``--docker`` nor ``POWERSTRIP_DOCKER_HOST`` says otherwise, so after ``make run`` they
reach the private daemon the gateway uses without being told. No powerstrip imports: the serve side
and the command side both sit above this module.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

FILE = "gateway.json"


def record(state_dir: Path, docker_url: str) -> Path:
    """Note that this process serves in front of ``docker_url`` (rewritten at every start)."""
    path = state_dir / FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"docker": docker_url, "pid": os.getpid()}) + "\n")
    tmp.replace(path)
    return path


def forget(state_dir: Path) -> None:
    """At stop: remove the note if it is still this process's."""
    path = state_dir / FILE
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def docker_of(state_dir: Path) -> str | None:
    """The daemon a gateway running with this state directory forwards to, or None."""
    try:
        info = json.loads((state_dir / FILE).read_text())
        pid = int(info["pid"])
        os.kill(pid, 0)  # still running?
    except (OSError, ValueError, KeyError, TypeError):
        return None
    docker = info.get("docker")
    return docker if isinstance(docker, str) else None

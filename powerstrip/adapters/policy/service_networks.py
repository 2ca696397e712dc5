"""A service's networks named by ID: the one check of the powers that needs the daemon.

A service attaches its tasks to the networks its spec names (``powers.service_networks``), by name, ID or ID
prefix, as swarmkit resolves them: ``"Target": "<the host network's ID>"`` puts every task in the host's
network namespace as surely as ``"Target": "host"``. The body alone cannot tell an ID, so each target that is
not the word ``host`` is looked up; one the daemon resolves to its ``host`` network is refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from powerstrip.adapters.net.docker_api import DockerAPI, DockerError
from powerstrip.adapters.policy.powers import service_networks
from powerstrip.sdk import Reject


async def check_service_networks(docker: DockerAPI, body: dict[str, Any]) -> None:
    """Refuse (403) a service spec attaching to the daemon's host network under another name than ``host``."""
    for where, target in service_networks(body):
        if not target or target.lower() == "host":
            continue  # none, or judged from the body already
        try:
            info = await docker.call("GET", f"/networks/{quote(target, safe='')}")
        except DockerError as exc:
            if exc.status == 404:
                continue  # the daemon refuses the service itself
            raise Reject(502, f"policy: cannot check the network {target!r}: {exc.message}") from None
        if isinstance(info, dict) and (info.get("Driver") == "host" or info.get("Name") == "host"):
            raise Reject(403, f"policy: the host network ({where} Target {target!r}, the host network's ID) "
                              "is not allowed")

"""What the net adapter leaves on a daemon (network-only containers, ``ps-`` networks), and removing it.

Used by the net and qos tests and by ``bench.qos`` between runs.
"""

from __future__ import annotations

import time

import docker

from powerstrip.adapters.net.attachments import LABEL_ROLE

from .dockerd import PrivateDockerd
from .util import HarnessError, wait_until


def leftovers(client: docker.DockerClient) -> tuple[list[str], list[str]]:
    """Network-only containers and ``ps-`` Docker networks that exist on the daemon."""
    holders = [c.name for c in client.containers.list(all=True, filters={"label": LABEL_ROLE})]
    networks = [n.name for n in client.networks.list() if n.name.startswith("ps-")]
    return holders, networks


def clean_daemon(client: docker.DockerClient, dockerd: PrivateDockerd | None = None) -> list[str]:
    """Remove what the net tests make: containers joined to network-only ones, those, containers attached
    to ``ps-`` networks, and the ``ps-`` networks; returns the networks that had to be left (none, normally).

    A network dockerd refuses with no endpoint left has a drifted endpoint count (moby#42119): only
    dockerd's restart corrects it. With ``dockerd`` it is restarted and the network removed then;
    without, the network is left and reported. Either way one dockerd bug does not fail this clean-up,
    nor (with ``dockerd``) every later test that checks for leftovers.
    """
    containers = client.containers.list(all=True)
    joined = [c for c in containers if c.attrs["HostConfig"]["NetworkMode"].startswith("container:")]
    ours = [c for c in containers if LABEL_ROLE in c.labels]
    attached = [c for c in containers if any(n.startswith("ps-") for n in c.attrs["NetworkSettings"]["Networks"] or {})]
    for c in joined + ours + attached:
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:  # an adapter still running is removing it too
            if "already in progress" not in str(exc):
                raise
    wait_until(lambda: leftovers(client)[0] == [], 30, 0.1, "network-only containers removed")
    drifted = [n.name for n in client.networks.list() if n.name.startswith("ps-") and not remove_network(client, n.id)]
    if drifted and dockerd is not None:
        print(f"clean-up: dockerd refuses {', '.join(drifted)} with no endpoint left (its endpoint count drifted, "
              "moby#42119): restarting dockerd, which corrects it")
        dockerd.restart()
        drifted = [name for name in drifted if not remove_network(client, name)]
        if drifted:
            raise HarnessError(f"dockerd still refuses {', '.join(drifted)} after its restart")
    if drifted:
        print(f"clean-up: left {', '.join(drifted)}: dockerd refuses it with no endpoint left (its endpoint "
              "count drifted, moby#42119); only a restart of dockerd lets it go")
    return drifted


def remove_network(client: docker.DockerClient, ref: str, patience: float = 2.0) -> bool:
    """Remove a network the containers have left, clearing the endpoints dockerd kept of removed containers
    (moby#17217): one test that hits that must not leave the network to fail every later test's clean-up.

    ``False`` when dockerd still refuses it after ``patience`` seconds with no endpoint listed (a drifted
    endpoint count, moby#42119: see ``clean_daemon``); a refusal with endpoints still listed is raised.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            network = client.networks.get(ref)
        except docker.errors.NotFound:
            return True
        endpoints = network.attrs.get("Containers") or {}
        for key, endpoint in endpoints.items():
            try:
                client.api.disconnect_container_from_network(endpoint.get("Name") or key, ref, force=True)
            except docker.errors.NotFound:
                pass
        try:
            network.remove()
            return True
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError as exc:
            if exc.status_code not in (403, 409) or time.monotonic() > deadline:
                if endpoints or exc.status_code not in (403, 409):
                    raise
                return False
        time.sleep(0.2)

"""What the net adapter leaves on a daemon (network-only containers, ``ps-`` networks), and removing it.

Used by the net and qos tests and by ``bench.qos`` between runs.
"""

from __future__ import annotations

import docker

from powerstrip.adapters.net.attachments import LABEL_ROLE

from .util import wait_until


def leftovers(client: docker.DockerClient) -> tuple[list[str], list[str]]:
    """Network-only containers and ``ps-`` Docker networks that exist on the daemon."""
    holders = [c.name for c in client.containers.list(all=True, filters={"label": LABEL_ROLE})]
    networks = [n.name for n in client.networks.list() if n.name.startswith("ps-")]
    return holders, networks


def clean_daemon(client: docker.DockerClient) -> None:
    """Remove what the net tests make: containers joined to network-only ones, those, ps- networks."""
    containers = client.containers.list(all=True)
    joined = [c for c in containers if c.attrs["HostConfig"]["NetworkMode"].startswith("container:")]
    for c in joined + [c for c in containers if LABEL_ROLE in c.labels]:
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:  # an adapter still running is removing it too
            if "already in progress" not in str(exc):
                raise
    wait_until(lambda: leftovers(client)[0] == [], 30, 0.1, "network-only containers removed")
    for n in client.networks.list():
        if n.name.startswith("ps-"):
            remove_network(client, n.id)


def remove_network(client: docker.DockerClient, ref: str) -> None:
    """Remove a network the containers have left, clearing the endpoints dockerd kept of removed containers
    (moby#17217): one test that hits that must not leave the network to fail every later test's clean-up."""
    network = client.networks.get(ref)
    for key, endpoint in (network.attrs.get("Containers") or {}).items():
        try:
            client.api.disconnect_container_from_network(endpoint.get("Name") or key, ref, force=True)
        except docker.errors.NotFound:
            pass
    network.remove()

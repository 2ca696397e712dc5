"""Reading and rewriting the body of ``POST /containers/create``, with no I/O.

The user's container joins the network namespace of a network-only container. Docker refuses
network settings on such a container (hostname, published ports, DNS, MAC, ...), so they move
to the network-only container, where they take effect for both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from powerstrip.adapters.net.model import InvalidInput

CIDR_VAR = "SOCKETPLANE_CIDR"
NETWORK_VAR = "SP_NETWORK"

_MOVED_CONFIG = ("Hostname", "Domainname", "ExposedPorts", "MacAddress")
_MOVED_HOST_CONFIG = ("PortBindings", "PublishAllPorts", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts")
_DEFAULT_MODES = (None, "", "default", "bridge")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a container asked for: a network by name and/or by range (neither: the default network)."""

    network: str | None
    cidr: str | None


@dataclass(frozen=True, slots=True)
class Split:
    """A create body joined to a network-only container, and what that container takes over."""

    body: dict[str, Any]
    config: dict[str, Any]
    host_config: dict[str, Any]


def wanted(body: dict[str, Any]) -> Wanted | None:
    """The network the body's ``Env`` asks for, or ``None`` when it names none (leave it alone)."""
    values: dict[str, str] = {}
    for item in body.get("Env") or []:
        key, sep, value = item.partition("=") if isinstance(item, str) else ("", "", "")
        if sep and key in (CIDR_VAR, NETWORK_VAR):
            values[key] = value
    if not values:
        return None
    return Wanted(values.get(NETWORK_VAR) or None, values.get(CIDR_VAR) or None)


def split(body: dict[str, Any], netcontainer: str, name: str | None) -> Split:
    """Join ``body`` to ``netcontainer``; refuses settings that cannot work with a shared namespace."""
    host = dict(body.get("HostConfig") or {})
    mode = host.get("NetworkMode")
    if mode not in _DEFAULT_MODES:
        raise InvalidInput(f"{CIDR_VAR}/{NETWORK_VAR} cannot be combined with --network {mode}")
    if host.get("Links"):
        raise InvalidInput(f"{CIDR_VAR}/{NETWORK_VAR} cannot be combined with --link: containers on one network reach each other by name")
    joined = {k: v for k, v in body.items() if k not in _MOVED_CONFIG}
    config = {k: body[k] for k in _MOVED_CONFIG if body.get(k)}
    if "Hostname" not in config and name and _HOSTNAME.fullmatch(name):
        config["Hostname"] = name  # the container's hostname is its network-only container's
    joined["HostConfig"] = {k: v for k, v in host.items() if k not in _MOVED_HOST_CONFIG}
    joined["HostConfig"]["NetworkMode"] = f"container:{netcontainer}"
    return Split(joined, config, {k: host[k] for k in _MOVED_HOST_CONFIG if host.get(k)})

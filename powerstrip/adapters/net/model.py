"""The values of virtual networking and the errors a user can cause, independent of storage and Docker."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network


@dataclass(frozen=True, slots=True)
class Network:
    """A virtual network: a name, an IPv4 range and its gateway (always the first host address).

    An ``implicit`` network was created by a container's ``SOCKETPLANE_CIDR`` and goes away with
    its last container; the others stay until deleted. ``vni`` is its VXLAN network identifier,
    allocated cluster-wide (``None`` in the single-host store).
    """

    name: str
    cidr: IPv4Network
    gateway: IPv4Address
    implicit: bool = False
    vni: int | None = None


@dataclass(frozen=True, slots=True)
class Allocation:
    """An address handed out on ``network`` to the network-only container ``owner``.

    ``container`` is the user's container once the daemon has created it; until then the
    allocation is pending (the create request is in flight, or failed and awaits cleanup).
    ``host`` is the underlay address of the host that runs it (``None`` in the single-host store).
    """

    network: str
    address: IPv4Address
    owner: str
    created: float
    container: str | None = None
    container_name: str | None = None
    host: str | None = None


class NetError(Exception):
    """A refusal with a message for the user and the HTTP status that fits it."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(NetError):
    status = 400


class NotFound(NetError):
    status = 404


class Conflict(NetError):
    """The request clashes with what exists: a name, an overlapping range, a full or busy network."""

    status = 409


class StoreUnavailable(NetError):
    """The cluster store cannot be reached: nothing was changed, the request may be retried."""

    status = 503


class SetupError(NetError):
    """The host lacks something powerstrip needs (e.g. the network-only container image)."""

    status = 500

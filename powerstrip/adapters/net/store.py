"""The state store interface: what powerstrip must remember about networks and addresses.

Methods are synchronous and atomic; callers on an event loop run them in a thread. The embedded
implementation is ``SqliteStore``; a cluster implementation (etcd) fills the same contract with
transactions (compare-and-swap) so that no address is ever handed out twice, on any host.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Protocol

from powerstrip.adapters.net.model import Allocation, Network


class Store(Protocol):
    def create_network(self, name: str, cidr: IPv4Network, *, implicit: bool = False, exist_ok: bool = False) -> Network:
        """Add a network (gateway: the first host address).

        Raises ``Conflict`` for a name that exists (unless ``exist_ok`` and it has the same range,
        then returns it) and for a range that overlaps another network's.
        """
        ...

    def network(self, name: str) -> Network:
        """The network called ``name``; raises ``NotFound``."""
        ...

    def networks(self) -> list[Network]: ...

    def delete_network(self, name: str) -> Network:
        """Remove a network; raises ``NotFound``, or ``Conflict`` (naming them) while addresses are allocated."""
        ...

    def allocate(self, network: str, owner: str) -> Allocation:
        """Hand out the lowest free address of ``network`` to ``owner`` (unique); raises ``NotFound`` or ``Conflict`` (full)."""
        ...

    def bind(self, owner: str, container: str, container_name: str | None) -> None:
        """Record the user's container that uses ``owner``'s address; raises ``NotFound``."""
        ...

    def release(self, owner: str) -> Allocation | None:
        """Free ``owner``'s address; returns what was freed (``None`` if nothing was allocated)."""
        ...

    def allocations(self, network: str | None = None) -> list[Allocation]:
        """All allocations (of ``network``), ordered by network and address."""
        ...

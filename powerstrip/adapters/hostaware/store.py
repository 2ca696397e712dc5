"""What host-aware rules keep: the rules, the messages and each host's last published state.

Methods are synchronous (callers on an event loop run them in a thread). Two implementations:
``SqliteHostStore`` (one host, a file in the state directory, shared by the gateway and the CLI)
and ``EtcdHostStore`` (``--cluster``: every member's rules, messages and metrics in etcd).

Retention: the newest ``MAX_MESSAGES`` messages are kept; older ones are deleted as new ones come.
A host that has not published for ``LOST_AFTER`` seconds (SQLite) or whose lease expired (etcd)
is listed as lost. (Both numbers are in ``model``.)
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from powerstrip.adapters.hostaware.model import HostRecord, Message, Rule

if TYPE_CHECKING:
    from powerstrip.adapters.net.cluster import ClusterSettings


class HostStore(Protocol):
    def add_rule(self, rule: Rule) -> None:
        """Store a new rule; raises ``Conflict`` when one of that name exists."""
        ...

    def rules(self) -> list[Rule]: ...

    def delete_rule(self, name: str) -> Rule:
        """Remove a rule; raises ``NotFound``."""
        ...

    def append(self, messages: Sequence[Message]) -> None:
        """Record messages (ids are given by the store, in order) and apply the retention."""
        ...

    def messages(self, after: int = 0, host: str | None = None, limit: int = 1000) -> list[Message]:
        """Messages with an id above ``after`` (of ``host``), oldest first, at most the newest ``limit``."""
        ...

    def publish(self, record: HostRecord) -> None:
        """This host's state as of now (its heartbeat too)."""
        ...

    def hosts(self) -> list[HostRecord]:
        """Every host that published, the lost ones marked ``lost``."""
        ...

    def close(self) -> None: ...


def open_store(state_dir: Path, cluster: ClusterSettings | None, host: str) -> HostStore:
    """SQLite in ``state_dir`` for one host; the etcd cluster with ``--cluster``."""
    if cluster is None:
        from powerstrip.adapters.hostaware.sqlite_store import SqliteHostStore

        return SqliteHostStore(state_dir / "hostaware.db")
    from powerstrip.adapters.hostaware.etcd_store import EtcdHostStore, HostEtcd

    return EtcdHostStore(HostEtcd(cluster.endpoints, tls=cluster.tls, credentials=cluster.credentials), host)


def host_name(cluster: ClusterSettings | None) -> str:
    """How this host is known: its underlay address in a cluster (as ``cluster members`` shows it),
    else its host name."""
    return cluster.advertise if cluster is not None else socket.gethostname()

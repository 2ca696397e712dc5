"""Where policies live: next to the networks, in the same SQLite file or the same etcd cluster.

Adding a policy is one atomic step that re-reads every policy and refuses a conflicting one
(``policy.check_conflicts``), so two operators (or two hosts) can never store contradicting
policies at once. Each host also records what it applied (``record_applied``), which ``qos list``
shows as the policy's state.

etcd keys (under ``/powerstrip/qos/``)::

    policies/NAME   the policy (``Policy.to_json``)
    catalog         rewritten by every add and delete: adds compare it (compare-and-swap)
    applied/HOST    {"policy": {"container": "state"}} as of the host's last pass
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Protocol

from powerstrip.adapters.net.etcd_client import Etcd, delete, put, unchanged
from powerstrip.adapters.net.model import NotFound, StoreUnavailable
from powerstrip.adapters.qos.policy import Policy, check_conflicts, from_json

# policy -> container -> state ("applied", "error: ..."), as one host last applied them
Applied = dict[str, dict[str, str]]

PREFIX = "/powerstrip/qos/"
POLICIES = PREFIX + "policies/"
APPLIED = PREFIX + "applied/"
CATALOG = PREFIX + "catalog"
ATTEMPTS = 100


class PolicyStore(Protocol):
    def add_policy(self, policy: Policy) -> Policy:
        """Store ``policy``; raises ``Conflict`` for a taken name or a contradicting policy."""
        ...

    def policies(self) -> list[Policy]:
        """Every policy, by name."""
        ...

    def delete_policy(self, name: str) -> Policy:
        """Remove a policy; raises ``NotFound``."""
        ...

    def record_applied(self, host: str, applied: Applied) -> None: ...

    def applied(self) -> dict[str, Applied]:
        """host -> what it applied."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS qos_policies (name TEXT PRIMARY KEY, policy TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS qos_applied (host TEXT PRIMARY KEY, applied TEXT NOT NULL, updated REAL NOT NULL);
"""


class SqlitePolicies:
    """``PolicyStore`` in the net adapter's SQLite file (its own tables)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def add_policy(self, policy: Policy) -> Policy:
        with self._write() as db:
            check_conflicts(policy, _policies(db))
            db.execute("INSERT INTO qos_policies VALUES (?, ?)", (policy.name, policy.to_json()))
        return policy

    def policies(self) -> list[Policy]:
        with closing(self._connect()) as db:
            return _policies(db)

    def delete_policy(self, name: str) -> Policy:
        with self._write() as db:
            row = db.execute("SELECT policy FROM qos_policies WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFound(f"policy {name} not found")
            db.execute("DELETE FROM qos_policies WHERE name = ?", (name,))
        return from_json(row[0])

    def record_applied(self, host: str, applied: Applied) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO qos_applied VALUES (?, ?, ?)", (host, json.dumps(applied), time.time()))

    def applied(self) -> dict[str, Applied]:
        with closing(self._connect()) as db:
            return {host: json.loads(text) for host, text in db.execute("SELECT host, applied FROM qos_applied")}


def _policies(db: sqlite3.Connection) -> list[Policy]:
    return [from_json(row[0]) for row in db.execute("SELECT policy FROM qos_policies ORDER BY name")]


class EtcdPolicies:
    """``PolicyStore`` in the cluster store, shared by every host."""

    def __init__(self, etcd: Etcd) -> None:
        self.etcd = etcd

    def add_policy(self, policy: Policy) -> Policy:
        key = POLICIES + policy.name
        for _ in range(ATTEMPTS):
            catalog = self.etcd.get(CATALOG)
            check_conflicts(policy, self.policies())
            if self.etcd.txn([unchanged(CATALOG, catalog.mod_revision if catalog else 0), unchanged(key, 0)],
                             [put(key, policy.to_json()), put(CATALOG, policy.name)]):
                return policy
        raise StoreUnavailable(f"adding policy {policy.name}: the cluster store stayed contended, try again")

    def policies(self) -> list[Policy]:
        return sorted((from_json(kv.value) for kv in self.etcd.range(POLICIES)[1]), key=lambda p: p.name)

    def delete_policy(self, name: str) -> Policy:
        key = POLICIES + name
        for _ in range(ATTEMPTS):
            kv = self.etcd.get(key)
            if kv is None:
                raise NotFound(f"policy {name} not found")
            if self.etcd.txn([unchanged(key, kv.mod_revision)], [delete(key), put(CATALOG, name)]):
                return from_json(kv.value)
        raise StoreUnavailable(f"deleting policy {name}: the cluster store stayed contended, try again")

    def record_applied(self, host: str, applied: Applied) -> None:
        self.etcd.txn([], [put(APPLIED + host, json.dumps(applied))])

    def applied(self) -> dict[str, Applied]:
        return {kv.key.removeprefix(APPLIED): json.loads(kv.value) for kv in self.etcd.range(APPLIED)[1]}

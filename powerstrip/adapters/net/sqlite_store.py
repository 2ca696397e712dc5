"""The embedded state store: one SQLite file in the state directory.

Each call opens its own connection, so threads and processes (the gateway and the CLI) can use
the same file; writes run in ``BEGIN IMMEDIATE`` transactions, which serialize allocators and
make "read the taken addresses, pick one, insert it" atomic.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from powerstrip.adapters.net import ipam
from powerstrip.adapters.net.model import Allocation, Conflict, Network, NotFound

_SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (
    name    TEXT PRIMARY KEY,
    cidr    TEXT NOT NULL,
    gateway TEXT NOT NULL,
    implicit INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS allocations (
    network        TEXT NOT NULL REFERENCES networks(name),
    address        TEXT NOT NULL,
    owner          TEXT NOT NULL UNIQUE,
    created        REAL NOT NULL,
    container      TEXT,
    container_name TEXT,
    PRIMARY KEY (network, address)
);
"""

_ALLOCATION_COLUMNS = "network, address, owner, created, container, container_name"


class SqliteStore:
    """``Store`` on a SQLite file; ``seed`` networks are added when missing (the ``default`` network)."""

    def __init__(self, path: Path, seed: Iterable[Network] = ()) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")  # readers (the CLI) never wait for the allocating gateway
            db.executescript(_SCHEMA)
        with self._write() as db:
            for network in seed:
                db.execute(
                    "INSERT OR IGNORE INTO networks VALUES (?, ?, ?, ?)",
                    (network.name, str(network.cidr), str(network.gateway), network.implicit),
                )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA foreign_keys=ON")
        return db

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

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as db:
            yield db

    def create_network(self, name: str, cidr: IPv4Network, *, implicit: bool = False, exist_ok: bool = False) -> Network:
        wanted = Network(name, cidr, ipam.gateway_of(cidr), implicit)
        with self._write() as db:
            present = ipam.admit_network(name, cidr, _networks(db), exist_ok)
            if present is not None:
                return present
            db.execute("INSERT INTO networks VALUES (?, ?, ?, ?)", (name, str(cidr), str(wanted.gateway), implicit))
        return wanted

    def network(self, name: str) -> Network:
        with self._read() as db:
            return _network(db, name)

    def networks(self) -> list[Network]:
        with self._read() as db:
            return _networks(db)

    def delete_network(self, name: str) -> Network:
        with self._write() as db:
            network = _network(db, name)
            users = _allocations(db, name)
            if users:
                listed = ", ".join(a.container_name or a.container or a.owner for a in users)
                raise Conflict(f"network {name} has {len(users)} attached container(s): {listed}")
            db.execute("DELETE FROM networks WHERE name = ?", (name,))
        return network

    def allocate(self, network: str, owner: str) -> Allocation:
        with self._write() as db:
            net = _network(db, network)
            taken = {IPv4Address(row[0]) for row in db.execute("SELECT address FROM allocations WHERE network = ?", (network,))}
            allocation = Allocation(network, ipam.first_free(net, taken), owner, time.time())
            db.execute(
                "INSERT INTO allocations (network, address, owner, created) VALUES (?, ?, ?, ?)",
                (network, str(allocation.address), owner, allocation.created),
            )
        return allocation

    def bind(self, owner: str, container: str, container_name: str | None) -> None:
        with self._write() as db:
            updated = db.execute(
                "UPDATE allocations SET container = ?, container_name = ? WHERE owner = ?",
                (container, container_name, owner),
            ).rowcount
            if not updated:
                raise NotFound(f"no address is allocated to {owner}")

    def release(self, owner: str) -> Allocation | None:
        with self._write() as db:
            row = db.execute(f"SELECT {_ALLOCATION_COLUMNS} FROM allocations WHERE owner = ?", (owner,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM allocations WHERE owner = ?", (owner,))
        return _allocation(row)

    def allocations(self, network: str | None = None) -> list[Allocation]:
        with self._read() as db:
            return _allocations(db, network)


def _network(db: sqlite3.Connection, name: str) -> Network:
    row = db.execute("SELECT name, cidr, gateway, implicit FROM networks WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFound(f"network {name} not found")
    return _network_of(row)


def _networks(db: sqlite3.Connection) -> list[Network]:
    return [_network_of(row) for row in db.execute("SELECT name, cidr, gateway, implicit FROM networks ORDER BY name")]


def _network_of(row: tuple) -> Network:
    name, cidr, gateway, implicit = row
    return Network(name, IPv4Network(cidr), IPv4Address(gateway), bool(implicit))


def _allocations(db: sqlite3.Connection, network: str | None) -> list[Allocation]:
    query = f"SELECT {_ALLOCATION_COLUMNS} FROM allocations"
    rows = db.execute(query + " WHERE network = ?", (network,)) if network else db.execute(query)
    return sorted((_allocation(row) for row in rows), key=lambda a: (a.network, a.address))


def _allocation(row: tuple) -> Allocation:
    network, address, owner, created, container, container_name = row
    return Allocation(network, IPv4Address(address), owner, created, container, container_name)
